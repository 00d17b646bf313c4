"""The pipelines API check against the kfp-api-standin, whose guard asks the real control plane
(TokenReview, SubjectAccessReview) as the DSPA route's proxy does on OpenShift."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from stagecheck.engine import pipelines
from stagecheck.engine.endpoints import EndpointError, Endpoints
from stagecheck.engine.outcome import StepFailure
from stagecheck.kube.client import Kube, connect
from stagecheck.kube.discovery import Discovery
from stagecheck.sandbox.controlplane import ControlPlane, free_ports
from stagecheck.sandbox.world import apply_documents
from tests.support import issue_token, token_kubeconfig

NAMESPACE = "pipelines-api"
CANARY = "canary-token-7f3a"  # must never be shown


@pytest.fixture(scope="module")
def guarded(kube: Kube) -> Kube:
    """Accounts ``allowed`` (bound to the route's role) and ``stranger`` (not bound)."""
    account = {"apiVersion": "v1", "kind": "ServiceAccount"}
    apply_documents(
        kube,
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            {**account, "metadata": {"name": "allowed", "namespace": NAMESPACE}},
            {**account, "metadata": {"name": "stranger", "namespace": NAMESPACE}},
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "ds-pipeline-user-access-dspa", "namespace": NAMESPACE},
                "rules": [
                    {
                        "apiGroups": ["route.openshift.io"],
                        "resources": ["routes"],
                        "resourceNames": ["ds-pipeline-dspa"],
                        "verbs": ["get"],
                    }
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "allowed", "namespace": NAMESPACE},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "ds-pipeline-user-access-dspa",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "allowed", "namespace": NAMESPACE}],
            },
        ],
    )
    return kube


@pytest.fixture(scope="module")
def standin(control_plane: ControlPlane) -> Iterator[str]:
    (port,) = free_ports(1)
    server = subprocess.Popen(
        [sys.executable, "-m", "stagecheck.sandbox.kfp_api_standin", "--port", str(port)]
        + ["--kubeconfig", str(control_plane.kubeconfig), "--namespace", NAMESPACE],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(url, trust_env=False)
            break
        except httpx.ConnectError:
            assert server.poll() is None and time.monotonic() < deadline, "stand-in did not start"
            time.sleep(0.1)
    yield url
    server.terminate()
    log = server.communicate(timeout=10)[0]
    assert CANARY not in log and "Bearer" not in log  # the guard logs no credential


def check(kube: Kube, url: str, auth: str, environ: dict[str, str] | None = None) -> object:
    target = replace(
        kube.target,
        namespace=NAMESPACE,
        endpoints={"pipelines": url},
        endpoint_auth={"pipelines": auth},
    )
    return pipelines.api_healthy(target, Endpoints(target, kube, Discovery(kube), environ), "dspa")


def test_an_allowed_account_finds_the_api_healthy(guarded: Kube, standin: str) -> None:
    assert check(guarded, standin, "serviceaccount:allowed") == {"multi_user": False}


def test_an_account_without_the_role_is_told_which_role_it_lacks(
    guarded: Kube, standin: str
) -> None:
    with pytest.raises(StepFailure) as caught:
        check(guarded, standin, "serviceaccount:stranger")
    message = str(caught.value)
    assert "HTTP 403" in message
    assert f"system:serviceaccount:{NAMESPACE}:stranger may not get" in message
    assert "grant it the role ds-pipeline-user-access-dspa" in message


def test_a_wrong_token_is_refused_and_never_shown(guarded: Kube, standin: str) -> None:
    with pytest.raises(StepFailure) as caught:
        check(guarded, standin, "env:PIPELINES_TOKEN", {"PIPELINES_TOKEN": CANARY})
    message = str(caught.value)
    assert "HTTP 401: token not accepted" in message
    assert "the token from the environment variable PIPELINES_TOKEN is not accepted" in message
    assert CANARY not in message and CANARY not in repr(caught.value)


def test_no_token_says_how_to_configure_one(guarded: Kube, standin: str) -> None:
    with pytest.raises(StepFailure, match="no bearer token was sent and the route requires one"):
        check(guarded, standin, "none")
    # The sandbox kubeconfig authenticates with a client certificate: it has no token to send.
    with pytest.raises(StepFailure, match="set endpoint-auth pipelines"):
        check(guarded, standin, "kubeconfig")


def test_the_kubeconfig_token_of_a_token_only_kubeconfig_is_sent(
    guarded: Kube, standin: str, control_plane: ControlPlane, tmp_path: Path
) -> None:
    """endpoint-auth = "kubeconfig" after `oc login`: the context's own token reaches the API."""
    token = issue_token(guarded, NAMESPACE, "allowed")
    kubeconfig = token_kubeconfig(control_plane, tmp_path / "kc", {"token": token})
    kube = connect(replace(guarded.target, type="cluster", kubeconfig=kubeconfig))
    try:
        assert check(kube, standin, "kubeconfig") == {"multi_user": False}
    finally:
        kube.close()


def test_a_missing_token_variable_is_named(guarded: Kube, standin: str) -> None:
    with pytest.raises(EndpointError, match="environment variable PIPELINES_TOKEN .* not set"):
        check(guarded, standin, "env:PIPELINES_TOKEN", {})


def test_an_api_that_does_not_answer_says_where_to_look(guarded: Kube) -> None:
    (closed,) = free_ports(1)
    with pytest.raises(StepFailure) as caught:
        check(guarded, f"http://127.0.0.1:{closed}", "serviceaccount:allowed")
    assert "does not answer: ConnectError" in str(caught.value)
    assert "check the APIServerReady condition" in str(caught.value)
