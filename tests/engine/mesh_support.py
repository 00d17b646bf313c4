"""Objects for the mesh tests, shaped as the Service Mesh operators and the llama-stack operator
write them (the sources are named where each is built)."""

from __future__ import annotations

import time
from typing import Any

from stagecheck.errors import KubeApiError
from stagecheck.kube.client import JsonObject, Kube
from stagecheck.kube.discovery import Discovery
from stagecheck.sandbox.world import apply_documents

T = "2026-11-01T09:05:00Z"


def namespace(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels or {}}}  # fmt: skip


def member(namespace: str, mesh_namespace: str, ready: bool = True) -> dict[str, Any]:
    """A ServiceMeshMember as its controller leaves it: Reconciled and Ready with an empty
    reason and message on success (maistra/istio-operator member/controller.go)."""
    state = "True" if ready else "False"
    reason = "" if ready else "ErrorConfiguringNamespace"
    return {
        "apiVersion": "maistra.io/v1",
        "kind": "ServiceMeshMember",
        "metadata": {"name": "default", "namespace": namespace},
        "spec": {"controlPlaneRef": {"name": "basic", "namespace": mesh_namespace}},
        "status": {"observedGeneration": 1, "conditions": [  # required: no omitempty there
            {"type": "Reconciled", "status": state, "reason": reason, "lastTransitionTime": T},
            {"type": "Ready", "status": state, "reason": reason, "lastTransitionTime": T},
        ]},
    }  # fmt: skip


def control_plane(mesh_namespace: str, auto_inject: bool | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"version": "v2.6"}
    if auto_inject is not None:
        spec["proxy"] = {"injection": {"autoInject": auto_inject}}
    return {
        "apiVersion": "maistra.io/v2",
        "kind": "ServiceMeshControlPlane",
        "metadata": {"name": "basic", "namespace": mesh_namespace},
        "spec": spec,
        # readiness is not optional in maistra's ControlPlaneStatus (no omitempty)
        "status": {"readiness": {"components": {"ready": ["istio-discovery"], "pending": [],
                                                "unready": []}},
                   "conditions": [{"type": "Ready", "status": "True", "reason": "ComponentsReady",
                                   "lastTransitionTime": T}]},
    }  # fmt: skip


def llama_stack(namespace: str) -> list[dict[str, Any]]:
    """A LlamaStackDistribution and the Deployment its operator makes: pod labels
    app=llama-stack and app.kubernetes.io/instance, only configmap-hash annotations, no way to
    add others (llama-stack-k8s-operator controllers/resource_helper.go)."""
    labels = {"app": "llama-stack", "app.kubernetes.io/instance": "llama-stack"}
    return [
        {
            "apiVersion": "llamastack.io/v1alpha1",
            "kind": "LlamaStackDistribution",
            "metadata": {"name": "llama-stack", "namespace": namespace},
            "spec": {"replicas": 1, "server": {"distribution": {"name": "rh-dev"},
                                               "containerSpec": {"port": 8321}}},
        },
        deployment(namespace, "llama-stack", labels, {},
                   owner="LlamaStackDistribution.llamastack.io/llama-stack"),
    ]  # fmt: skip


def deployment(
    namespace: str,
    name: str,
    labels: dict[str, str],
    annotations: dict[str, str],
    owner: str | None = None,
    host_network: bool = False,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if owner:
        metadata["annotations"] = {"stagecheck.io/owner": owner}
    pod_spec: dict[str, Any] = {"containers": [{"name": "main", "image": "example.com/app:1"}]}
    if host_network:
        pod_spec["hostNetwork"] = True
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {**labels, "app": name}, "annotations": annotations},
                "spec": pod_spec,
            },
        },
    }


def pod_of(kube: Kube, namespace: str, app: str, timeout_s: float = 30) -> JsonObject:
    """The pod the controller-manager made for the Deployment ``app``."""
    deadline = time.monotonic() + timeout_s
    while True:
        pods = kube.get(f"/api/v1/namespaces/{namespace}/pods", {"labelSelector": f"app={app}"})
        if pods["items"]:
            return dict(pods["items"][0])
        assert time.monotonic() < deadline, f"no pod for Deployment {namespace}/{app}"
        time.sleep(0.2)


def remove(kube: Kube, paths: list[str]) -> None:
    for path in paths:
        kube.delete(path)


def apply(kube: Kube, documents: list[dict[str, Any]]) -> None:
    apply_documents(kube, documents)


def await_listable(kube: Kube, crd: dict[str, Any], timeout_s: float = 30) -> None:
    """Until the CRD's kind is served and listed (its storage answers 429 for a moment)."""
    kind = f"{crd['spec']['names']['kind']}.{crd['spec']['group']}"
    resource = Discovery(kube).resolve_when_served(kind)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            kube.get(resource.collection_path(None))
            return
        except KubeApiError:
            assert time.monotonic() < deadline, f"{resource.qualified} is never listable"
            time.sleep(0.2)


def open_crd(group: str, kind: str, plural: str, scope: str = "Namespaced") -> dict[str, Any]:
    """A CRD of that kind (version v1) whose schema is left open: the tests write what they
    need of the real one."""
    version = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {
            "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
            "versions": [version],
        },
    }


# Istio's PeerAuthentication (security.istio.io/v1): spec.selector, spec.mtls.mode (UNSET |
# DISABLE | PERMISSIVE | STRICT). Stored as v1beta1, as OSSM 2.5's CRD (the sandbox world's)
# stores it, and served as v1 too (Istio 1.22+), so the two CRDs can replace each other.
PA_CRD = open_crd("security.istio.io", "PeerAuthentication", "peerauthentications")
PA_CRD["spec"]["versions"] = [
    {**PA_CRD["spec"]["versions"][0], "name": "v1beta1"},
    {**PA_CRD["spec"]["versions"][0], "storage": False},
]


def model_service(ns: str, ready: bool = True, sidecar: bool = True) -> list[dict[str, Any]]:
    """Service model-predictor, its pods (with istio-proxy, as injected) and an EndpointSlice
    written by hand, ready at once (kwok readies the pods, and the controller's slice, a moment
    later). Not ``ready``: a Service without a selector, the hand-written slice its only one."""
    pods = deployment(ns, "model", {}, {})
    if sidecar:
        containers = pods["spec"]["template"]["spec"]["containers"]
        containers.append({"name": "istio-proxy", "image": "example.com/proxyv2:1"})
    spec: dict[str, Any] = {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    if ready:
        spec["selector"] = {"app": "model"}
    return [
        pods,
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "model-predictor", "namespace": ns}, "spec": spec},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "model-predictor-by-hand", "namespace": ns,
                      "labels": {"kubernetes.io/service-name": "model-predictor",
                                 "endpointslice.kubernetes.io/managed-by": "stagecheck-tests"}},
         "addressType": "IPv4",
         "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
         "endpoints": [{"addresses": ["10.0.0.7"], "conditions": {"ready": ready}}]},
    ]  # fmt: skip


def peer_authentication(ns: str, mode: str) -> dict[str, Any]:
    return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": "default", "namespace": ns}, "spec": {"mtls": {"mode": mode}}}  # fmt: skip
