"""Port-forward endpoints for real: through the API server to kwok, which forwards a fake pod's
port to a local server (its PortForward resources), as a kind user's kubelet would."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stagecheck.config import Target
from stagecheck.engine.endpoints import Endpoints
from stagecheck.errors import EndpointError
from stagecheck.kube.client import Kube, connect
from stagecheck.kube.discovery import Discovery
from stagecheck.sandbox.controlplane import ControlPlane
from stagecheck.sandbox.world import apply_documents
from tests.support import LocalHandler, issue_token, local_http, token_kubeconfig

NAMESPACE = "forwarding"


class Greeter(LocalHandler):
    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        self.reply(f"hello from {self.path}".encode())


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    with local_http(Greeter) as port:
        yield port


def pod(name: str, labels: dict[str, str]) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "nodeName": "kwok-node-0",
            "containers": [
                {
                    "name": "web",
                    "image": "web:1",
                    "ports": [{"name": "http", "containerPort": 8080}],
                }
            ],
        },
    }


@pytest.fixture(scope="module")
def forwarding(kube: Kube, server: int) -> Kube:
    """Pod ``web`` forwarded to the local server; pod ``unforwarded`` without a forward rule;
    Service ``web`` in front of ``web`` by a named port; Service ``nobody`` with no pod."""
    apply_documents(
        kube,
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            pod("web", {"app": "web"}),
            pod("unforwarded", {"app": "unforwarded"}),
            {
                "apiVersion": "kwok.x-k8s.io/v1alpha1",
                "kind": "PortForward",
                "metadata": {"name": "web", "namespace": NAMESPACE},
                "spec": {
                    "forwards": [
                        {"ports": [8080], "target": {"address": "127.0.0.1", "port": server}}
                    ]
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "web", "namespace": NAMESPACE},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "nobody", "namespace": NAMESPACE},
                "spec": {"selector": {"app": "nobody"}, "ports": [{"port": 80}]},
            },
        ],
    )
    deadline = time.monotonic() + 10  # kwok learns of new PortForward resources by watching
    while True:
        try:
            endpoints, _ = resolve(kube, "port-forward:pod/web:8080")
            endpoints.close()
            return kube
        except EndpointError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def target_for(kube: Kube, endpoints: dict[str, str]) -> Target:
    return replace(kube.target, namespace=NAMESPACE, endpoints=endpoints)


def resolve(kube: Kube, spec: str) -> tuple[Endpoints, str]:
    found = Endpoints(target_for(kube, {"web": spec}), kube, Discovery(kube))
    return found, found.resolve("web").url


def test_a_pod_port_is_reached_through_the_api_server(forwarding: Kube) -> None:
    import httpx

    endpoints, url = resolve(forwarding, "port-forward:pod/web:8080/base")
    try:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/base")
        for attempt in range(3):  # each connection gets its own tunnel
            with httpx.Client(trust_env=False) as http:
                assert http.get(f"{url}/{attempt}").text == f"hello from /base/{attempt}"
    finally:
        endpoints.close()


def test_a_service_port_leads_to_a_ready_pod_behind_it(
    forwarding: Kube, control_plane: ControlPlane
) -> None:
    import httpx

    endpoints, url = resolve(forwarding, "port-forward:service/web:80")
    try:
        with httpx.Client(trust_env=False) as http:
            assert http.get(f"{url}/x").text == "hello from /x"
        assert "Service web" in endpoints.resolve("web").how
    finally:
        endpoints.close()
    time.sleep(1.2)  # the audit log is written in batches of up to a second
    requests = [json.loads(line) for line in control_plane.audit_log.read_text().splitlines()]
    forwarded = [
        r
        for r in requests
        if r.get("objectRef", {}).get("subresource") == "portforward"
        and r.get("objectRef", {}).get("namespace") == NAMESPACE
    ]
    assert forwarded, "the API server's audit log shows no pods/portforward request"


def test_a_pod_without_a_forward_names_the_nodes_refusal(forwarding: Kube) -> None:
    with pytest.raises(EndpointError) as caught:
        resolve(forwarding, "port-forward:pod/unforwarded:8080")
    message = str(caught.value)
    assert "pod forwarding/unforwarded port 8080" in message
    assert "no forward found for port 8080" in message


def test_a_service_without_a_ready_pod_says_so(forwarding: Kube) -> None:
    with pytest.raises(EndpointError, match="Service forwarding/nobody has no Ready pod"):
        resolve(forwarding, "port-forward:service/nobody:80")
    with pytest.raises(EndpointError, match=r"Service forwarding/web has no port 81 \(:80\)"):
        resolve(forwarding, "port-forward:service/web:81")
    with pytest.raises(EndpointError, match="no Service missing in forwarding"):
        resolve(forwarding, "port-forward:service/missing:80")


def test_a_malformed_port_forward_spec_shows_the_syntax(forwarding: Kube) -> None:
    with pytest.raises(EndpointError, match="written port-forward:service/NAME:PORT"):
        resolve(forwarding, "port-forward:deployment/web")


def test_a_token_only_kubeconfig_forwards_as_its_service_account(
    forwarding: Kube, control_plane: ControlPlane, tmp_path: Path
) -> None:
    """Tunnels authenticate as the API requests do (no client certificate here)."""
    import httpx

    apply_documents(
        forwarding,
        [
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": "forwarder", "namespace": NAMESPACE}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": "forwarder", "namespace": NAMESPACE},
             "rules": [{"apiGroups": [""], "resources": ["pods", "services"],
                        "verbs": ["get", "list", "watch"]},
                       {"apiGroups": [""], "resources": ["pods/portforward"],
                        "verbs": ["get", "create"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "forwarder", "namespace": NAMESPACE},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                         "name": "forwarder"},
             "subjects": [{"kind": "ServiceAccount", "name": "forwarder",
                           "namespace": NAMESPACE}]},
        ],
    )  # fmt: skip
    token = issue_token(forwarding, NAMESPACE, "forwarder")
    kubeconfig = token_kubeconfig(control_plane, tmp_path / "kc", {"token": token})
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    kube = connect(Target("t", "cluster", kubeconfig, None, NAMESPACE, False), "run-pf-token")
    try:
        endpoints, url = resolve(kube, "port-forward:service/web:80")
        with httpx.Client(trust_env=False) as http:
            assert http.get(f"{url}/t").text == "hello from /t"
        endpoints.close()
    finally:
        kube.close()
    time.sleep(1.2)  # the audit log is written in batches of up to a second
    # The WebSocket client sends no User-Agent of ours: tell the tunnels apart by namespace.
    events = [json.loads(line) for line in control_plane.audit_log.read_text().splitlines()]
    tunnels = {
        e["user"]["username"]
        for e in events
        if e.get("objectRef", {}).get("subresource") == "portforward"
        and e.get("objectRef", {}).get("namespace") == NAMESPACE
        and e.get("requestReceivedTimestamp", "") >= started
    }
    assert tunnels == {f"system:serviceaccount:{NAMESPACE}:forwarder"}
