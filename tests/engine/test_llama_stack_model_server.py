"""Causes read from where Llama Stack is told its model server is: the server resource's env
``VLLM_URL`` (LlamaStackDistribution ``spec.server.containerSpec.env``; the distribution's
run.yaml reads ``${env.VLLM_URL}``), the Service that URL names and its EndpointSlices
(``kubernetes.io/service-name``), and the mesh only where it is shown to refuse plaintext calls
to that Service (Service Mesh 2.x: a member namespace, pods with ``istio-proxy``, and
``spec.security.dataPlane.mtls: true`` or a PeerAuthentication; the closest policy wins)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from stagecheck.engine import mesh
from stagecheck.engine.dataplane import LlamaStack, why_model_missing
from stagecheck.engine.endpoints import Endpoint
from stagecheck.engine.kubernetes import Cluster
from stagecheck.kube.client import Kube
from stagecheck.kube.discovery import Discovery
from tests.engine.mesh_support import (
    PA_CRD,
    apply,
    await_listable,
    control_plane,
    deployment,
    member,
    model_service,
    namespace,
    peer_authentication,
    pod_of,
    remove,
)
from tests.support import LocalHandler, local_http

MESH = "llsd-url-mesh-cp"  # the mesh's namespace
STRICT = "llsd-url-strict"  # a member; the model's pods carry istio-proxy; mtls: true
PERMISSIVE = "llsd-url-permissive"  # the same, with a namespace PeerAuthentication PERMISSIVE
OUTSIDER = "llsd-url-outsider"  # not a member of the mesh
NOWHERE = "llsd-url-nowhere"  # VLLM_URL names a Service that does not exist
EMPTY = "llsd-url-empty"  # the Service exists, its only endpoint is not ready
OUTSIDE = "llsd-url-outside"  # VLLM_URL is a host outside the cluster
SECRET = "llsd-url-secret"  # VLLM_URL comes from a Secret
SECRET_URL = "http://hidden-model.example.com/v1"


def url_in(ns: str, service: str = "model-predictor") -> str:
    return f"http://{service}.{ns}.svc.cluster.local/v1"


def distribution(ns: str, env: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "llamastack.io/v1alpha1",
        "kind": "LlamaStackDistribution",
        "metadata": {"name": "llama-stack", "namespace": ns},
        "spec": {"replicas": 1, "server": {"distribution": {"name": "rh-dev"},
                                           "containerSpec": {"port": 8321, "env": env}}},
    }  # fmt: skip


def llama_stack(
    ns: str, url: str | None = None, env: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The distribution and its operator's Deployment: pods without istio-proxy."""
    given = env or [{"name": "VLLM_URL", "value": url}, {"name": "INFERENCE_MODEL", "value": "m"}]
    return [
        distribution(ns, given),
        deployment(ns, "llama-stack", {"app.kubernetes.io/instance": "llama-stack"}, {},
                   owner="LlamaStackDistribution.llamastack.io/llama-stack"),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def cluster(stage_kinds: Kube) -> Iterator[Kube]:
    apply(stage_kinds, [PA_CRD])
    await_listable(stage_kinds, PA_CRD)
    plane = control_plane(MESH)
    plane["spec"]["security"] = {"dataPlane": {"mtls": True}}
    apply(stage_kinds, [
        namespace(MESH), plane,
        *[doc for ns in (STRICT, PERMISSIVE)
          for doc in (namespace(ns, {mesh.MEMBER_OF: MESH}), member(ns, MESH))],
        peer_authentication(PERMISSIVE, "PERMISSIVE"),
        *[namespace(ns) for ns in (OUTSIDER, NOWHERE, EMPTY, OUTSIDE, SECRET)],
        *[doc for ns in (STRICT, PERMISSIVE, OUTSIDER)
          for doc in (*llama_stack(ns, url_in(ns)), *model_service(ns))],
        *llama_stack(NOWHERE, url_in(NOWHERE, "nowhere")),
        *llama_stack(EMPTY, url_in(EMPTY)), *model_service(EMPTY, ready=False),
        *llama_stack(OUTSIDE, "https://vllm.example.com/v1"),
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "vllm", "namespace": SECRET},
         "stringData": {"url": SECRET_URL}},
        *llama_stack(SECRET, env=[{"name": "VLLM_URL", "valueFrom": {
            "secretKeyRef": {"name": "vllm", "key": "url"}}}]),
    ])  # fmt: skip
    for ns in (STRICT, PERMISSIVE, OUTSIDER, NOWHERE, EMPTY, OUTSIDE, SECRET):
        pod_of(stage_kinds, ns, "llama-stack")
    for ns in (STRICT, PERMISSIVE, OUTSIDER, EMPTY):
        pod_of(stage_kinds, ns, "model")
    yield stage_kinds
    # Other tests judge by Service Mesh 3.x rules where no control plane of 2.x exists.
    remove(stage_kinds, [f"/apis/maistra.io/v2/namespaces/{MESH}/servicemeshcontrolplanes/basic"])


def why(kube: Kube, ns: str, stack: LlamaStack | None = None) -> str:
    return why_model_missing(Cluster(kube, ns), replace(kube.target, namespace=ns), stack) or ""


def test_a_pod_without_sidecar_is_the_cause_where_the_model_service_is_mtls_only(
    cluster: Kube,
) -> None:
    pod = pod_of(cluster, STRICT, "llama-stack")["metadata"]["name"]
    said = why(cluster, STRICT)
    assert (
        f"pod {pod} has no istio-proxy sidecar, so the mesh rejects its calls to the mTLS-only "
        f"model service: Service {STRICT}/model-predictor is in the mesh (namespace {STRICT} a "
        f"member of ServiceMeshControlPlane {MESH}/basic; its pods carry istio-proxy) and "
        f"requires mTLS (ServiceMeshControlPlane {MESH}/basic spec.security.dataPlane.mtls: true)"
    ) in said
    assert "VLLM_URL" not in said  # the Service exists and has a ready endpoint


def test_a_namespace_peer_authentication_permissive_wins_over_the_mesh_wide_mtls(
    cluster: Kube,
) -> None:
    said = why(cluster, PERMISSIVE)
    assert "rejects" not in said
    assert (
        f"which its model service does not require: Service {PERMISSIVE}/model-predictor is in "
        f"the mesh" in said
    )
    assert f"but PeerAuthentication {PERMISSIVE}/default mtls.mode PERMISSIVE accepts" in said


def test_a_model_service_outside_the_mesh_is_no_sidecar_cause(cluster: Kube) -> None:
    said = why(cluster, OUTSIDER)
    assert "rejects" not in said
    assert (
        f"Service {OUTSIDER}/model-predictor is outside the mesh: namespace {OUTSIDER} is not a "
        "member of a mesh" in said
    )


def test_a_url_naming_no_service_says_so_with_its_field(cluster: Kube) -> None:
    said = why(cluster, NOWHERE)
    assert (
        f"VLLM_URL (LlamaStackDistribution llama-stack spec.server.containerSpec.env) is "
        f'{url_in(NOWHERE, "nowhere")}: no Service "nowhere" in namespace {NOWHERE}'
    ) in said
    assert "istio-proxy" not in said  # the mesh cannot be judged for a Service that is not there


def test_a_service_without_ready_endpoints_says_so(cluster: Kube) -> None:
    said = why(cluster, EMPTY)
    assert (
        f'is {url_in(EMPTY)}: Service "model-predictor" in namespace {EMPTY} has no ready '
        "endpoints (its EndpointSlices list 1 endpoint, none ready)"
    ) in said


def test_a_host_outside_the_cluster_is_only_named(cluster: Kube) -> None:
    said = why(cluster, OUTSIDE)
    assert said == (
        "VLLM_URL (LlamaStackDistribution llama-stack spec.server.containerSpec.env) is "
        "https://vllm.example.com/v1, outside the cluster: the model server Llama Stack was given"
    )


def test_a_url_from_a_secret_is_named_never_read(cluster: Kube) -> None:
    said = why(cluster, SECRET)
    assert (
        "VLLM_URL (LlamaStackDistribution llama-stack spec.server.containerSpec.env) comes "
        "from Secret vllm key url" in said
    )
    assert SECRET_URL not in said and "hidden-model" not in said
    pod = pod_of(cluster, SECRET, "llama-stack")["metadata"]["name"]
    assert (
        f"pod {pod} has no istio-proxy sidecar; whether its model server requires mTLS is "
        "not known" in said
    )


# -- a cluster that serves no mesh --------------------------------------------------------------
NO_MESH = "llama-stack-no-mesh"
HEALTH_ERROR = {"status": "Error", "message": "Health check failed: All connection attempts failed"}


class FailingProviders(LocalHandler):
    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        data = [{"api": "inference", "provider_id": "vllm", "health": HEALTH_ERROR}]
        self.reply(json.dumps({"data": data}).encode())


def test_without_a_mesh_a_pod_without_sidecar_is_no_cause(kube: Kube) -> None:
    """The shared plane serves no mesh kind: the failing provider is the cause, the missing
    istio-proxy of Llama Stack's pod is none."""
    assert mesh.served_rules(kube, Discovery(kube)) is None
    apply(kube, [namespace(NO_MESH), deployment(NO_MESH, "llama-stack", {}, {})])
    pod_of(kube, NO_MESH, "llama-stack")
    with local_http(FailingProviders) as port:
        stack = LlamaStack(Endpoint("llama-stack", f"http://127.0.0.1:{port}", True, "test"))
        said = why(kube, NO_MESH, stack)
    assert "its inference provider vllm reports 'Error: Health check failed" in said
    assert "istio-proxy" not in said and "mesh" not in said
