"""What the cluster says about Llama Stack's inference provider, read where the real operators
and server write it: ``status.distributionConfig.providers[]`` with ``provider_id`` and
``health{status, message}`` (llama-stack-k8s-operator api/v1alpha1/
llamastackdistribution_types.go ProviderInfo), a copy of the server's own ``/v1/providers``
(health ``OK`` | ``Error`` | ``Not Implemented``, llama-stack providers/datatypes.py), which
wins where it answers; OGXServer (ogx.io/v1beta1) pods labelled ``app=ogx``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from stagecheck.engine.dataplane import LlamaStack, why_model_missing
from stagecheck.engine.endpoints import Endpoint
from stagecheck.engine.kubernetes import Cluster
from stagecheck.engine.outcome import StepFailure
from stagecheck.kube.client import Kube
from stagecheck.sandbox.controlplane import free_ports
from tests.engine.mesh_support import apply, deployment, namespace, pod_of
from tests.support import LocalHandler, local_http

FAILING = "llsd-provider-error"
UNCHECKED = "llsd-not-implemented"
OGX = "ogx-server"
HEALTH_ERROR = {"status": "Error", "message": "Health check failed: All connection attempts failed"}
served_health: dict[str, Any] = {}  # what the stand-in Llama Stack server's /v1/providers says


def provider(api: str, provider_id: str, health: dict[str, str]) -> dict[str, Any]:
    return {"api": api, "provider_id": provider_id, "provider_type": f"remote::{provider_id}",
            "config": {"url": "http://model.example.svc/v1"}, "health": health}  # fmt: skip


def server(kind: str, name: str, ns: str, providers: list[dict[str, Any]]) -> dict[str, Any]:
    # Each kind's spec as its CRD declares it (OGXServer has no replicas and no server block).
    if kind == "LlamaStackDistribution":
        group, spec = (
            "llamastack.io/v1alpha1",
            {"replicas": 1, "server": {"distribution": {"name": "rh-dev"}}},
        )
    else:
        group, spec = "ogx.io/v1beta1", {"distribution": {"name": "rh-dev"}}
    return {
        "apiVersion": group,
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
        "status": {
            "phase": "Ready",
            "distributionConfig": {"activeDistribution": "rh-dev", "providers": providers},
            "conditions": [{"type": "HealthCheck", "status": "True", "reason": "HealthCheckPassed",
                            "message": "Health check passed",
                            "lastTransitionTime": "2026-11-03T08:01:00Z"}],
        },
    }  # fmt: skip


class ProvidersServer(LocalHandler):
    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        if self.path == "/v1/providers":
            self.reply(
                json.dumps({"data": [provider("inference", "vllm", served_health)]}).encode()
            )
        else:
            self.reply(b"{}", 404)


@pytest.fixture(scope="module")
def cluster(stage_kinds: Kube) -> Kube:
    apply(stage_kinds, [
        namespace(FAILING), namespace(UNCHECKED), namespace(OGX),
        server("LlamaStackDistribution", "llama-stack", FAILING,
               [provider("inference", "vllm", HEALTH_ERROR),
                provider("vector_io", "milvus", {"status": "OK", "message": ""})]),
        server("LlamaStackDistribution", "llama-stack", UNCHECKED,
               [provider("inference", "vllm", {"status": "Not Implemented",
                                               "message": "Provider does not implement health check"})]),
        server("OGXServer", "ogx", OGX,
               [provider("inference", "vllm", {"status": "OK", "message": ""})]),
        deployment(OGX, "ogx", {"app.kubernetes.io/instance": "ogx"}, {},
                   owner="OGXServer.ogx.io/ogx"),
    ])  # fmt: skip
    return stage_kinds


@pytest.fixture
def stack() -> Iterator[LlamaStack]:
    with local_http(ProvidersServer) as port:
        yield LlamaStack(Endpoint("llama-stack", f"http://127.0.0.1:{port}", True, "test"))


def why(kube: Kube, ns: str, stack: LlamaStack | None = None) -> str | None:
    return why_model_missing(Cluster(kube, ns), replace(kube.target, namespace=ns), stack)


def test_the_operators_copy_names_the_failing_provider_and_its_message(cluster: Kube) -> None:
    said = why(cluster, FAILING) or ""
    assert "its inference provider vllm reports 'Error: Health check failed: All connection" in said
    assert "LlamaStackDistribution llama-stack status, the operator's copy of /v1/providers" in said


def test_not_implemented_is_no_failure(cluster: Kube) -> None:
    assert why(cluster, UNCHECKED) is None


def test_the_servers_own_answer_wins_over_the_copy(cluster: Kube, stack: LlamaStack) -> None:
    served_health.clear()
    served_health.update({"status": "OK"})
    assert why(cluster, FAILING, stack) is None  # the copy's Error is stale
    served_health.update(HEALTH_ERROR)
    said = why(cluster, UNCHECKED, stack) or ""
    assert "its inference provider vllm reports 'Error: Health check failed" in said
    assert f"Llama Stack's /v1/providers at {stack.endpoint.url}" in said


def test_an_ogx_server_pod_without_its_sidecar_is_found(cluster: Kube) -> None:
    pod = pod_of(cluster, OGX, "ogx")
    assert f"pod {pod['metadata']['name']} has no istio-proxy sidecar" in (why(cluster, OGX) or "")


def test_the_distribution_is_found_under_the_kind_that_holds_it(cluster: Kube) -> None:
    """Both kinds served (a migration): the OGXServer named is judged, not a missing LLSD."""
    Cluster(cluster, OGX).expect_distribution_ready("ogx", None)
    with pytest.raises(StepFailure, match="LlamaStackDistribution llsd-provider-error/absent"):
        Cluster(cluster, FAILING).expect_distribution_ready("absent", None)


def test_a_server_that_does_not_answer_leaves_the_copy_and_says_so(cluster: Kube) -> None:
    (closed,) = free_ports(1)
    gone = LlamaStack(Endpoint("llama-stack", f"http://127.0.0.1:{closed}", True, "test"))
    said = why(cluster, FAILING, gone) or ""
    assert "its inference provider vllm reports 'Error: Health check failed" in said
    assert (
        "the operator's copy of /v1/providers; the server's own /v1/providers does not "
        "answer (ConnectError)" in said
    )
