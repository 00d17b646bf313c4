"""Every way a kubeconfig authenticates, against the real API server of the test control plane
(which enforces authentication and RBAC); the audit log says who the API server saw."""

from __future__ import annotations

import base64
import select
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from stagecheck.config import Target
from stagecheck.engine.kubernetes import Cluster
from stagecheck.errors import (
    CredentialError,
    Forbidden,
    ServerNotTrusted,
    StagecheckError,
    Unauthorized,
)
from stagecheck.kube.client import Kube, connect
from stagecheck.sandbox.controlplane import ControlPlane
from stagecheck.sandbox.world import apply_documents
from tests.support import audit_events, issue_token, token_kubeconfig, usernames

NAMESPACE = "auth-tests"
CANARY = "canary-token-9c2e"  # a token that must never be shown


def account(name: str) -> str:
    return f"system:serviceaccount:{NAMESPACE}:{name}"


@pytest.fixture(scope="module")
def accounts(kube: Kube) -> Kube:
    """``reader`` and ``reader-2`` may read ConfigMaps in the namespace, ``nobody`` nothing."""
    service_account = {"apiVersion": "v1", "kind": "ServiceAccount"}
    names = ("reader", "reader-2", "nobody")
    apply_documents(
        kube,
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            *({**service_account, "metadata": {"name": n, "namespace": NAMESPACE}} for n in names),
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": "configmap-reader", "namespace": NAMESPACE},
             "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                        "verbs": ["get", "list", "watch"]}]},
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "readers", "namespace": NAMESPACE},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                            "name": "configmap-reader"},
                "subjects": [{"kind": "ServiceAccount", "name": n, "namespace": NAMESPACE}
                             for n in names[:2]],
            },
        ],
    )  # fmt: skip
    return kube


def target(kubeconfig: Path) -> Target:
    return Target("cluster:token", "cluster", kubeconfig, None, NAMESPACE, False)


def timed(action: Callable[[], object]) -> tuple[StagecheckError, float]:
    started = time.monotonic()
    with pytest.raises(StagecheckError) as caught:
        action()
    return caught.value, time.monotonic() - started


def run_as(kubeconfig: Path, run: str) -> Kube:
    kube = connect(target(kubeconfig), run)
    kube.get(f"/api/v1/namespaces/{NAMESPACE}/configmaps")
    return kube


def test_a_token_only_kubeconfig_is_seen_as_its_service_account(
    control_plane: ControlPlane, accounts: Kube, tmp_path: Path
) -> None:
    token = issue_token(accounts, NAMESPACE, "reader")
    kubeconfig = token_kubeconfig(control_plane, tmp_path / "kc", {"token": token})
    run_as(kubeconfig, "run-auth-token").close()
    events = audit_events(control_plane, "run-auth-token")
    assert events and usernames(events) == {account("reader")}


def test_a_token_file_is_read_again_when_it_rotates(
    control_plane: ControlPlane, accounts: Kube, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text(issue_token(accounts, NAMESPACE, "reader"))
    kubeconfig = token_kubeconfig(control_plane, tmp_path / "kc", {"tokenFile": "token"})
    kube = run_as(kubeconfig, "run-auth-file")
    (tmp_path / "token").write_text(issue_token(accounts, NAMESPACE, "reader-2"))
    kube.get(f"/api/v1/namespaces/{NAMESPACE}/configmaps")
    kube.close()
    events = audit_events(control_plane, "run-auth-file")
    assert [e["user"]["username"] for e in events][-1] == account("reader-2")  # type: ignore[index]
    assert usernames(events) == {account("reader"), account("reader-2")}


def exec_plugin(tmp_path: Path, lifetime_s: int) -> dict[str, object]:
    """A credential plugin that hands out tokens[1], tokens[2], ... one per run, each expiring
    ``lifetime_s`` after it was issued; it counts its runs in ``runs``."""
    script = tmp_path / "plugin.sh"
    script.write_text(
        "#!/bin/sh\n"
        f"cd {tmp_path}\necho run >> runs\nn=$(wc -l < runs)\n"
        f"[ -f tokens/$n ] || n=$(ls tokens | sort -n | tail -1)\n"
        f"expires=$(date -u -d '+{lifetime_s} seconds' +%Y-%m-%dT%H:%M:%SZ)\n"
        'printf \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
        '"status":{"token":"%s","expirationTimestamp":"%s"}}\' "$(cat tokens/$n)" "$expires"\n'
    )
    script.chmod(0o700)
    (tmp_path / "tokens").mkdir()
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": "./plugin.sh",  # relative to the kubeconfig's folder, as kubectl has it
            "interactiveMode": "Never",
        }
    }


def test_an_exec_token_that_expires_during_a_long_wait_is_fetched_again(
    control_plane: ControlPlane, accounts: Kube, tmp_path: Path
) -> None:
    user = exec_plugin(tmp_path, lifetime_s=1)
    (tmp_path / "tokens" / "1").write_text(issue_token(accounts, NAMESPACE, "reader"))
    (tmp_path / "tokens" / "2").write_text(issue_token(accounts, NAMESPACE, "reader-2"))
    kubeconfig = token_kubeconfig(control_plane, tmp_path / "kc", user)
    kube = connect(target(kubeconfig), "run-auth-exec")
    late = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}}
    creator = threading.Timer(
        2.5, lambda: accounts.create(f"/api/v1/namespaces/{NAMESPACE}/configmaps", late)
    )
    creator.start()
    try:
        cluster = Cluster(kube, NAMESPACE)
        cluster.expect_exists("ConfigMap", "late", None, within=10)  # the token expires meanwhile
        cluster.expect_exists("ConfigMap", "late", None, within=None)
    finally:
        creator.join()
        accounts.delete(f"/api/v1/namespaces/{NAMESPACE}/configmaps/late")
        kube.close()
    runs = len((tmp_path / "runs").read_text().split())
    events = audit_events(control_plane, "run-auth-exec")
    assert runs >= 2
    assert usernames(events) == {account("reader"), account("reader-2")}
    assert not [e for e in events if e.get("responseStatus", {}).get("code") == 401]  # type: ignore[union-attr]


def test_a_rejected_exec_token_is_fetched_again_once(
    control_plane: ControlPlane, accounts: Kube, tmp_path: Path
) -> None:
    user = exec_plugin(tmp_path, lifetime_s=3600)
    (tmp_path / "tokens" / "1").write_text(CANARY)  # revoked, say: the server answers 401
    (tmp_path / "tokens" / "2").write_text(issue_token(accounts, NAMESPACE, "reader"))
    kubeconfig = token_kubeconfig(control_plane, tmp_path / "kc", user)
    run_as(kubeconfig, "run-auth-renew").close()
    assert len((tmp_path / "runs").read_text().split()) == 2


def test_a_wrong_token_says_log_in_again_and_never_shows_it(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    kubeconfig = token_kubeconfig(control_plane, tmp_path / "kc", {"token": CANARY})
    error, seconds = timed(lambda: connect(target(kubeconfig)))
    assert isinstance(error, Unauthorized)
    assert str(error) == (
        f"the API server did not accept the token of user 'token-user' (context "
        f"'{yaml.safe_load(kubeconfig.read_text())['current-context']}' of {kubeconfig}; "
        "HTTP 401 on GET /version): log in again (oc login), or name another context"
    )
    assert CANARY not in str(error) and CANARY not in repr(error) and seconds < 10


def test_a_token_without_permissions_names_user_verb_and_resource(
    control_plane: ControlPlane, accounts: Kube, tmp_path: Path
) -> None:
    token = issue_token(accounts, NAMESPACE, "nobody")
    kubeconfig = token_kubeconfig(control_plane, tmp_path / "kc", {"token": token})
    error, seconds = timed(lambda: run_as(kubeconfig, "run-auth-nobody"))
    assert isinstance(error, Forbidden)
    assert str(error).startswith(
        f'configmaps is forbidden: User "{account("nobody")}" cannot list resource "configmaps" '
        f'in API group "" in the namespace "{NAMESPACE}" (HTTP 403 on GET '
    )
    assert "the credentials were accepted but that user lacks the permission" in str(error)
    assert token not in str(error) and seconds < 10


def other_ca(tmp_path: Path) -> str:
    """A CA that has signed nothing of the control plane's, base64 as in a kubeconfig."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(tmp_path / "other.key"), "-out", str(tmp_path / "other.crt"),
         "-subj", "/CN=some-other-cluster-ca", "-days", "1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return base64.b64encode((tmp_path / "other.crt").read_bytes()).decode()


def test_a_server_the_kubeconfig_ca_does_not_sign_is_named_with_the_ca(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    config = yaml.safe_load(control_plane.kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    cluster.pop("certificate-authority", None)
    cluster["certificate-authority-data"] = other_ca(tmp_path)
    (tmp_path / "kc").write_text(yaml.safe_dump(config))
    error, seconds = timed(lambda: connect(target(tmp_path / "kc")))
    assert isinstance(error, ServerNotTrusted)
    message = str(error)
    assert f"the API server at {cluster['server']} (context " in message
    assert "presented a certificate that the CA 'CN=some-other-cluster-ca' " in message
    assert f"(certificate-authority-data of cluster '{config['clusters'][0]['name']}')" in message
    assert "server name 127.0.0.1; unable to get local issuer certificate" in message
    assert seconds < 10


def test_tls_server_name_checks_the_certificate_for_that_name(
    control_plane: ControlPlane, accounts: Kube, tmp_path: Path
) -> None:
    config = yaml.safe_load(control_plane.kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    cluster["server"] = cluster["server"].replace("127.0.0.1", "localhost")
    cluster["tls-server-name"] = "not-this-cluster.example"
    (tmp_path / "kc").write_text(yaml.safe_dump(config))
    error, _ = timed(lambda: connect(target(tmp_path / "kc")))
    assert "is not valid for the name not-this-cluster.example" in str(error)
    assert "set tls-server-name for cluster" in str(error)
    cluster["tls-server-name"] = "127.0.0.1"  # a name the serving certificate holds
    (tmp_path / "kc").write_text(yaml.safe_dump(config))
    connect(target(tmp_path / "kc")).close()


def test_a_failing_exec_plugin_is_one_sentence_within_seconds(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    script = tmp_path / "login.sh"
    script.write_text("#!/bin/sh\necho 'error: you must log in first (oc login)' >&2\nexit 1\n")
    script.chmod(0o700)
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(script)}}
    kubeconfig = token_kubeconfig(control_plane, tmp_path / "kc", user)
    error, seconds = timed(lambda: connect(target(kubeconfig)))
    assert isinstance(error, CredentialError)
    assert str(error) == (
        f"the exec plugin `login.sh` of user 'token-user' ran `{script}`, which failed with "
        "exit status 1: error: you must log in first (oc login)"
    )
    assert seconds < 10


class ConnectProxy(socketserver.ThreadingTCPServer):
    """A minimal HTTP CONNECT proxy on loopback that remembers where it was asked to go."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ConnectHandler)
        self.tunnels: list[str] = []


class ConnectHandler(socketserver.StreamRequestHandler):
    server: ConnectProxy

    def handle(self) -> None:
        request = self.rfile.readline().decode()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # the request's headers
        method, where, _ = request.split(" ", 2)
        if method != "CONNECT":
            self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            return
        host, port = where.rsplit(":", 1)
        self.server.tunnels.append(where)
        upstream = socket.create_connection((host, int(port)))
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        sockets = [self.connection, upstream]
        while True:
            readable, _, _ = select.select(sockets, [], [], 5)
            if not readable:
                break
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    upstream.close()
                    return
                (upstream if sock is self.connection else self.connection).sendall(data)


def test_a_proxy_url_carries_the_api_requests(
    control_plane: ControlPlane, accounts: Kube, tmp_path: Path
) -> None:
    proxy = ConnectProxy()
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        config = yaml.safe_load(control_plane.kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        cluster["proxy-url"] = f"http://127.0.0.1:{proxy.server_address[1]}"
        (tmp_path / "kc").write_text(yaml.safe_dump(config))
        connect(target(tmp_path / "kc")).close()
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert proxy.tunnels == [cluster["server"].removeprefix("https://")]
