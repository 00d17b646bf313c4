"""The pipelines API check against the kfp-api-standin, whose guard asks the real control plane
(TokenReview, SubjectAccessReview) as the DSPA route's proxy does on OpenShift, for both
proxies of data-science-pipelines-operator: oauth-proxy up to v2.17 (SAR get
routes/ds-pipeline-<dspa>, config/internal/apiserver/default/deployment.yaml.tmpl) and
kube-rbac-proxy from v2.18 (SAR on datasciencepipelinesapplications/api <dspa>, verb from the
method, config/internal/apiserver/default/kube-rbac-proxy-config.yaml.tmpl). The version is
read from the ds-pipeline-<dspa> Deployment's containers, as on a real cluster."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from stagecheck.engine import pipelines
from stagecheck.engine.endpoints import Endpoints
from stagecheck.engine.kubernetes import Cluster
from stagecheck.engine.outcome import StepFailure
from stagecheck.errors import EndpointError
from stagecheck.kube.client import Kube, connect
from stagecheck.kube.discovery import Discovery
from stagecheck.sandbox.controlplane import ControlPlane, free_ports
from stagecheck.sandbox.world import apply_documents
from tests.support import issue_token, token_kubeconfig

NAMESPACE = "pipelines-api"  # DSPO v2.17 (RHOAI 2.25): oauth-proxy
NAMESPACE_218 = "pipelines-api-218"  # DSPO v2.18: kube-rbac-proxy
CANARY = "canary-token-7f3a"  # must never be shown
ACCOUNT = {"apiVersion": "v1", "kind": "ServiceAccount"}


def api_server(namespace: str, proxy: str) -> dict[str, Any]:
    """The API server Deployment the operator makes: the server and the route's proxy."""
    labels = {"app": "ds-pipeline-dspa", "component": "data-science-pipelines", "dspa": "dspa"}
    containers = [
        {
            "name": "ds-pipeline-api-server",
            "image": "quay.io/opendatahub/ds-pipelines-api-server:v2",
        },
        {"name": proxy, "image": f"registry.example.com/{proxy}:1"},
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "ds-pipeline-dspa", "namespace": namespace, "labels": labels},
        "spec": {"replicas": 0, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": containers}}},
    }  # fmt: skip


def user_access(namespace: str, rule: dict[str, Any]) -> list[dict[str, Any]]:
    """Accounts ``allowed`` (bound to the operator's role) and ``stranger`` (not bound)."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {**ACCOUNT, "metadata": {"name": "allowed", "namespace": namespace}},
        {**ACCOUNT, "metadata": {"name": "stranger", "namespace": namespace}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "ds-pipeline-user-access-dspa", "namespace": namespace},
            "rules": [rule],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "allowed", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": "ds-pipeline-user-access-dspa"},
            "subjects": [{"kind": "ServiceAccount", "name": "allowed", "namespace": namespace}],
        },
    ]  # fmt: skip


@pytest.fixture(scope="module")
def guarded(kube: Kube) -> Kube:
    routes = {
        "apiGroups": ["route.openshift.io"],
        "resources": ["routes"],
        "resourceNames": ["ds-pipeline-dspa"],
        "verbs": ["get"],
    }
    # v2.18's Role (kube-rbac-proxy-config.yaml.tmpl): the DSPA's api subresource.
    api = {
        "apiGroups": ["datasciencepipelinesapplications.opendatahub.io"],
        "resources": ["datasciencepipelinesapplications/api"],
        "resourceNames": ["dspa"],
        "verbs": ["get", "create", "update", "patch", "delete"],
    }
    apply_documents(kube, [
        *user_access(NAMESPACE, routes), api_server(NAMESPACE, "oauth-proxy"),
        *user_access(NAMESPACE_218, api), api_server(NAMESPACE_218, "kube-rbac-proxy"),
    ])  # fmt: skip
    return kube


@contextmanager
def running_standin(kubeconfig: Path, namespace: str, proxy: str) -> Iterator[str]:
    (port,) = free_ports(1)
    server = subprocess.Popen(
        [sys.executable, "-m", "stagecheck.sandbox.kfp_api_standin", "--port", str(port)]
        + ["--kubeconfig", str(kubeconfig), "--namespace", namespace, "--proxy", proxy],
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


@pytest.fixture(scope="module")
def standin(control_plane: ControlPlane) -> Iterator[str]:
    """The route of a DSPO v2.17 DSPA: oauth-proxy."""
    with running_standin(control_plane.kubeconfig, NAMESPACE, "oauth-proxy") as url:
        yield url


@pytest.fixture(scope="module")
def standin_218(control_plane: ControlPlane) -> Iterator[str]:
    """The route of a DSPO v2.18 DSPA: kube-rbac-proxy."""
    with running_standin(control_plane.kubeconfig, NAMESPACE_218, "kube-rbac-proxy") as url:
        yield url


def check(
    kube: Kube,
    url: str,
    auth: str,
    environ: dict[str, str] | None = None,
    namespace: str = NAMESPACE,
) -> object:
    target = replace(
        kube.target,
        namespace=namespace,
        endpoints={"pipelines": url},
        endpoint_auth={"pipelines": auth},
    )
    endpoints = Endpoints(target, kube, Discovery(kube), environ)
    return pipelines.api_healthy(target, endpoints, Cluster(kube, namespace), "dspa")


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
    assert (
        "get on routes/ds-pipeline-dspa (route.openshift.io), which its oauth-proxy asks" in message
    )
    assert "up to v2.17" in message
    assert f"seen: container oauth-proxy of Deployment {NAMESPACE}/ds-pipeline-dspa" in message


def test_v2_18_allows_an_account_granted_the_dspa_api(guarded: Kube, standin_218: str) -> None:
    assert check(guarded, standin_218, "serviceaccount:allowed", namespace=NAMESPACE_218) == {
        "multi_user": False
    }


def test_v2_18_refuses_the_route_rule_and_names_the_api_subresource(
    guarded: Kube, standin_218: str
) -> None:
    """kube-rbac-proxy asks for datasciencepipelinesapplications/api: an account granted only
    get on the route (the v2.17 rule) is refused, and the advice follows the version met."""
    rbac = {"apiVersion": "rbac.authorization.k8s.io/v1"}
    apply_documents(guarded, [
        {**ACCOUNT, "metadata": {"name": "route-reader", "namespace": NAMESPACE_218}},
        {**rbac, "kind": "Role", "metadata": {"name": "route-get", "namespace": NAMESPACE_218},
         "rules": [{"apiGroups": ["route.openshift.io"], "resources": ["routes"],
                    "resourceNames": ["ds-pipeline-dspa"], "verbs": ["get"]}]},
        {**rbac, "kind": "RoleBinding",
         "metadata": {"name": "route-reader", "namespace": NAMESPACE_218},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "route-get"},
         "subjects": [{"kind": "ServiceAccount", "name": "route-reader",
                       "namespace": NAMESPACE_218}]},
    ])  # fmt: skip
    with pytest.raises(StepFailure) as caught:
        check(guarded, standin_218, "serviceaccount:route-reader", namespace=NAMESPACE_218)
    message = str(caught.value)
    assert (
        "HTTP 403: Forbidden (user=system:serviceaccount:pipelines-api-218:route-reader, "
        "verb=get, resource=datasciencepipelinesapplications, subresource=api)"
    ) in message
    assert "grant it the role ds-pipeline-user-access-dspa" in message
    assert "get on datasciencepipelinesapplications/api dspa" in message
    assert "kube-rbac-proxy asks (data-science-pipelines-operator v2.18 and later" in message
    assert "routes/ds-pipeline-dspa" not in message


def test_v2_18_no_token_is_refused(guarded: Kube, standin_218: str) -> None:
    with pytest.raises(StepFailure, match="HTTP 401: Unauthorized"):
        check(guarded, standin_218, "none", namespace=NAMESPACE_218)


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


def test_without_the_api_servers_deployment_the_advice_names_both_rules(guarded: Kube) -> None:
    proxy = pipelines.route_proxy(Cluster(guarded, NAMESPACE), NAMESPACE, "absent")
    assert proxy.container is None
    advice = proxy.access("absent")
    assert "up to v2.17" in advice and "routes/ds-pipeline-absent" in advice
    assert "from v2.18" in advice and "datasciencepipelinesapplications/api absent" in advice
    assert f"there is no Deployment {NAMESPACE}/ds-pipeline-absent" in advice
