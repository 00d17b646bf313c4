"""Reading kubeconfigs: every field type checked, what cannot be honoured refused by name, no
value of the file ever in a message; token sources that rotate, expire and are renewed."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient

from stagecheck.config import Target
from stagecheck.errors import CredentialError, KubeconfigError, TargetUnreachable
from stagecheck.kube.credentials import ExecPlugin, TokenFile, first_line
from stagecheck.kube.kubeconfig import ClusterAccess, load_access, read_kubeconfig
from stagecheck.kube.portforward import tunnel_configuration
from stagecheck.kube.tls import PemFiles

CANARY = "canary-secret-4d1f"  # a token or key value: it must never appear in a message


def config(user: dict[str, Any], cluster: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster or {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "dev", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "dev",
    }


def read(tmp_path: Path, document: Any, text: str | None = None) -> ClusterAccess:
    path = tmp_path / "kubeconfig"
    path.write_text(text if text is not None else yaml.safe_dump(document))
    return read_kubeconfig(path, "dev", "target 'cluster:dev'")


def refused(tmp_path: Path, document: Any, text: str | None = None) -> str:
    with pytest.raises(KubeconfigError) as caught:
        read(tmp_path, document, text)
    message = str(caught.value)
    assert CANARY not in message
    return message


def test_a_kubeconfig_that_is_not_yaml_names_the_place_never_the_text(tmp_path: Path) -> None:
    text = f"users:\n- name: u\n  user: {{token: {CANARY}\n"
    message = refused(tmp_path, None, text)
    assert message.startswith(f"kubeconfig {tmp_path / 'kubeconfig'} is not valid YAML at line")


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("just a string", "is not a kubeconfig: expected a mapping"),
        ({"users": {"u": {}}}, "users must be a list (it is a mapping)"),
        (config({"token": [CANARY]}), "users[u].user.token must be a string (it is a list)"),
        (
            config({"token": CANARY}, {"server": "https://x", "insecure-skip-tls-verify": "yes"}),
            "clusters[c].cluster.insecure-skip-tls-verify must be true or false (it is a string)",
        ),
        (config({"token": CANARY}, {"server": "ftp://x"}), "server is not an http(s) URL"),
        (
            config({"token": CANARY, "client-certificate-data": "%%%"}),
            "users[u].user.client-certificate-data is not base64",
        ),
        (
            config({"client-certificate-data": base64.b64encode(b"x").decode()}),
            "has a client-certificate but no client-key",
        ),
        (config({"token": CANARY, "tokenFile": "t", "exec": {}}), "user.exec.command is missing"),
    ],
)
def test_a_field_of_the_wrong_shape_is_named(tmp_path: Path, document: Any, expected: str) -> None:
    assert expected in refused(tmp_path, document)


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ({"auth-provider": {"name": "oidc"}}, "user.auth-provider is set: legacy auth-provider"),
        ({"username": "admin", "password": CANARY}, "user.username is set: basic authentication"),
        ({"token": CANARY, "as": "system:admin"}, "user.as is set: impersonation is not supported"),
        (
            {"exec": {"command": "kubelogin", "apiVersion": "client.authentication.k8s.io/v1",
                      "interactiveMode": "Always"}},
            "interactiveMode is Always: the plugin needs a terminal",
        ),
        (
            {"exec": {"command": "x", "apiVersion": "client.authentication.k8s.io/v1alpha1"}},
            "apiVersion is 'client.authentication.k8s.io/v1alpha1'; supported:",
        ),
        ({}, "has no credentials (user 'u' has no token, tokenFile, exec plugin or client"),
    ],
)  # fmt: skip
def test_what_stagecheck_cannot_honour_is_refused_at_start_by_name(
    tmp_path: Path, user: dict[str, Any], expected: str
) -> None:
    assert expected in refused(tmp_path, config(user))


def test_proxy_and_trust_conflicts_are_refused(tmp_path: Path) -> None:
    socks = {"server": "https://x", "proxy-url": "socks5://127.0.0.1:1080"}
    assert "proxy-url uses scheme 'socks5'" in refused(tmp_path, config({"token": CANARY}, socks))
    ca = base64.b64encode(b"PEM").decode()
    both = {
        "server": "https://x",
        "insecure-skip-tls-verify": True,
        "certificate-authority-data": ca,
    }
    assert "sets both insecure-skip-tls-verify and a certificate authority" in refused(
        tmp_path, config({"token": CANARY}, both)
    )


def test_a_missing_context_lists_the_others(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config({"token": CANARY})))
    with pytest.raises(KubeconfigError, match=r"context 'prod' is not in .*contexts there: dev"):
        read_kubeconfig(path, "prod", "target 'cluster:prod'")


def test_paths_are_relative_to_the_kubeconfig_folder(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(CANARY + "\n")
    access = read(tmp_path, config({"tokenFile": "token"}, {"server": "http://127.0.0.1:1"}))
    assert access.token is not None and access.token.token() == CANARY
    assert access.describe_credentials() == f"the token file of user 'u' ({tmp_path / 'token'})"
    assert access.describe_tls() == "NO TLS: http://127.0.0.1:1 is plain HTTP"


def test_a_missing_certificate_file_is_named(tmp_path: Path) -> None:
    cluster = {"server": "https://x", "certificate-authority": "ca.crt"}
    message = refused(tmp_path, config({"token": CANARY}, cluster))
    assert f"certificate-authority names {tmp_path / 'ca.crt'}, which does not exist" in message


def test_an_insecure_cluster_says_so_loudly(tmp_path: Path) -> None:
    insecure = {"server": "https://x", "insecure-skip-tls-verify": True}
    access = read(tmp_path, config({"token": CANARY}, insecure))
    assert not access.verifies_tls
    assert access.describe_tls().startswith("TLS NOT VERIFIED: insecure-skip-tls-verify is set")


def test_a_sandbox_kubeconfig_that_is_gone_means_the_sandbox_is_down(tmp_path: Path) -> None:
    target = Target("sandbox", "sandbox", tmp_path / "none", None, "ns", True)
    with pytest.raises(TargetUnreachable, match="the sandbox control plane is not running"):
        load_access(target)


def test_a_token_file_is_read_again_when_it_rotates(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first")
    source = TokenFile(path, "the service account token")
    assert source.token() == "first"
    path.write_text("second-token")  # as the kubelet swaps a projected token
    assert source.renew("first") and source.token() == "second-token"
    assert not source.renew("second-token")  # unchanged: not worth sending again


# -- exec plugins ---------------------------------------------------------------------------
def plugin_script(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "plugin"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def credential(token: str, expires: str | None = None) -> str:
    status: dict[str, str] = {"token": token}
    if expires:
        status["expirationTimestamp"] = expires
    return json.dumps(
        {
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "status": status,
        }
    )


def plugin(command: Path | str, clock: Any = None, hint: str | None = None) -> ExecPlugin:
    return ExecPlugin(
        command=str(command),
        args=(),
        env={"PLUGIN_SAYS": "hi"},
        api_version="client.authentication.k8s.io/v1",
        install_hint=hint,
        cluster_info=None,
        owner="user 'u'",
        **({"clock": clock} if clock else {}),
    )


def test_an_exec_plugin_token_is_kept_until_its_expiry_then_fetched_again(tmp_path: Path) -> None:
    count = tmp_path / "count"
    script = plugin_script(
        tmp_path,
        f'echo x >> {count}\n[ "$PLUGIN_SAYS" = hi ] || exit 9\n'
        f"n=$(wc -l < {count})\n"
        f"echo '{credential('token-N', '2026-12-02T12:00:00Z')}' | sed \"s/-N/-$n/\"\n",
    )
    now = [1_700_000_000.0]  # long before the expiry the plugin states
    source = plugin(script, clock=lambda: now[0])
    assert source.token() == "token-1" and source.token() == "token-1"
    assert source.runs == 1
    now[0] = 1_800_000_000.0  # after it
    assert source.token() == "token-2" and source.runs == 2
    now[0] = 1_700_000_000.0
    assert source.renew("token-2") and source.token() == "token-3"  # a 401: ask again
    assert source.runs == 3


def test_an_exec_plugin_gets_its_exec_info(tmp_path: Path) -> None:
    script = plugin_script(
        tmp_path,
        'echo "$KUBERNETES_EXEC_INFO" | grep -q \'"interactive": false\' || exit 3\n'
        f"echo '{credential(CANARY)}'\n",
    )
    assert plugin(script).token() == CANARY


def test_a_missing_exec_plugin_names_its_command_and_install_hint() -> None:
    with pytest.raises(CredentialError) as caught:
        plugin(
            "kubelogin-not-here", hint="Install kubelogin: https://example.com/kubelogin"
        ).token()
    assert str(caught.value) == (
        "the exec plugin `kubelogin-not-here` of user 'u' runs `kubelogin-not-here`, which is "
        "not installed or not on PATH (Install kubelogin: https://example.com/kubelogin)"
    )


def test_a_failing_exec_plugin_shows_its_first_error_line_without_secrets(
    tmp_path: Path,
) -> None:
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.c2lnbmF0dXJl"
    script = plugin_script(
        tmp_path, f"echo 'error: token {jwt} expired' >&2\necho more >&2\nexit 1\n"
    )
    with pytest.raises(CredentialError) as caught:
        plugin(script).token()
    message = str(caught.value)
    assert message.endswith("which failed with exit status 1: error: token <redacted> expired")
    assert jwt not in message


def test_an_exec_plugin_that_prints_no_credential_is_named(tmp_path: Path) -> None:
    with pytest.raises(CredentialError, match="printed no ExecCredential"):
        plugin(plugin_script(tmp_path, f"echo {CANARY}\n")).token()


def test_the_first_line_helper_cuts_long_key_material() -> None:
    assert first_line(f"\n  bad key {'A' * 40} here\nsecond") == "bad key <redacted> here"


# -- the kubernetes package, which carries the token of port-forward tunnels -----------------
def test_the_kubernetes_client_sends_the_tunnel_token_where_we_put_it(tmp_path: Path) -> None:
    """Fails loudly if a kubernetes client release moves where its Configuration keeps the
    bearer token: port-forward tunnels would then talk as system:anonymous."""
    access = read(tmp_path, config({"token": CANARY}, {"server": "http://127.0.0.1:1"}))
    files = PemFiles(access)
    configuration = tunnel_configuration(access, files)
    headers: dict[str, str] = {}
    ApiClient(configuration).update_params_for_auth(
        headers, [], ["BearerToken"], "/api/v1/namespaces/x/pods/y/portforward", "GET", None
    )  # the auth settings the generated CoreV1Api passes for every call
    assert headers == {"authorization": f"Bearer {CANARY}"}
    files.close()


def test_pem_data_lives_in_memory_files_only_while_the_client_does(tmp_path: Path) -> None:
    cluster = {
        "server": "https://x",
        "certificate-authority-data": base64.b64encode(b"PEM").decode(),
    }
    access = read(tmp_path, config({"token": CANARY}, cluster))
    files = PemFiles(access)
    assert files.ca is not None and files.ca.startswith("/proc/self/fd/")
    assert Path(files.ca).read_bytes() == b"PEM"
    files.close()
    assert not os.path.exists(files.ca)
