"""Endpoint resolution where no URL is configured: a Route only through a router that admitted
it (openshift/api route/v1/types.go: ``status.ingress[]`` with an ``Admitted`` condition per
router), Llama Stack where its operator reports it (``status.routeURL``/``serviceURL``,
llama-stack-k8s-operator controllers/status.go; it makes no Route), and Docling through the
objects its operator names ``<name>-route``/``<name>-service`` (docling-operator
internal/reconcilers/)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from stagecheck.engine import dataplane
from stagecheck.engine.endpoints import Endpoints
from stagecheck.engine.outcome import StepFailure
from stagecheck.errors import EndpointError
from stagecheck.kube.client import Kube
from stagecheck.kube.discovery import Discovery
from stagecheck.sandbox.world import apply_documents

ROUTES = "endpoint-routes"
STACK = "endpoint-llama-stack"
OGX_LESS = "endpoint-nothing"
T = "2026-11-03T08:00:00Z"


def route(name: str, namespace: str, ingress: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "route.openshift.io/v1",
        "kind": "Route",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"host": f"{name}.apps.example.com", "to": {"kind": "Service", "name": name},
                 "tls": {"termination": "edge"}},
        "status": {"ingress": ingress},
    }  # fmt: skip


def ingress(router: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    admitted = {"type": "Admitted", "status": status, "lastTransitionTime": T}
    admitted |= {k: v for k, v in (("reason", reason), ("message", message)) if v}
    return {"host": "h.apps.example.com", "routerName": router, "conditions": [admitted],
            "wildcardPolicy": "None"}  # fmt: skip


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def llsd(name: str, status: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "llamastack.io/v1alpha1",
        "kind": "LlamaStackDistribution",
        "metadata": {"name": name, "namespace": STACK},
        "spec": {"replicas": 1, "server": {"distribution": {"name": "rh-dev"},
                                           "containerSpec": {"port": 8321}}},
        "status": status,
    }  # fmt: skip


@pytest.fixture(scope="module")
def world(stage_kinds: Kube) -> Kube:
    claimed = "route web-b already exposes web.apps.example.com and is older"
    apply_documents(
        stage_kinds,
        [
            namespace(ROUTES),
            namespace(STACK),
            namespace(OGX_LESS),
            route("admitted", ROUTES, [ingress("default", "True")]),
            route("claimed", ROUTES, [ingress("default", "False", "HostAlreadyClaimed", claimed)]),
            route("unadmitted", ROUTES, []),
            # Two routers (shards): one refused it, the other serves it.
            route("sharded", ROUTES, [ingress("internal", "False", "RouteNotAdmitted"),
                                      ingress("default", "True")]),
            # A Route named after the distribution, as the sandbox used to have: never used.
            route("llama-stack", STACK, [ingress("default", "True")]),
        ],
    )  # fmt: skip
    return stage_kinds


def endpoints(kube: Kube, namespace: str, type_: str = "cluster") -> Endpoints:
    target = replace(kube.target, namespace=namespace, type=type_, endpoints={})
    return Endpoints(target, kube, Discovery(kube))


def test_an_admitted_route_is_used(world: Kube) -> None:
    found = endpoints(world, ROUTES).resolve("web", route="admitted")
    assert found.url == "https://h.apps.example.com"
    assert found.how == "Route admitted"


def test_a_route_no_router_admitted_names_the_router_and_its_reason(world: Kube) -> None:
    with pytest.raises(EndpointError) as caught:
        endpoints(world, ROUTES).resolve("web", route="claimed")
    message = str(caught.value)
    assert f"Route {ROUTES}/claimed is not admitted" in message
    assert "router default: Admitted=False (HostAlreadyClaimed: route web-b already" in message


def test_a_route_without_any_router_status_is_not_used(world: Kube) -> None:
    with pytest.raises(EndpointError, match="not admitted by any router"):
        endpoints(world, ROUTES).resolve("unadmitted")


def test_the_router_that_admitted_a_sharded_route_is_used(world: Kube) -> None:
    assert endpoints(world, ROUTES).resolve("web", route="sharded").url.startswith("https://")


def test_llama_stack_uses_the_route_url_its_operator_reports(world: Kube) -> None:
    """v0.9.0 writes status.routeURL when spec.network.exposeRoute is set."""
    apply_documents(world, [llsd("llama-stack", {
        "phase": "Ready",
        "serviceURL": f"http://llama-stack-service.{STACK}.svc.cluster.local:8321",
        "routeURL": "http://llama-stack.apps.example.com",
    })])  # fmt: skip
    found = endpoints(world, STACK).resolve("llama-stack")
    assert found.url == "http://llama-stack.apps.example.com"
    assert found.how == "status.routeURL of LlamaStackDistribution llama-stack"


def test_llama_stack_without_a_route_url_is_reached_by_its_service_url_in_cluster(
    world: Kube,
) -> None:
    """v0.3.0 (RHOAI 2.25) writes serviceURL only; the Route llama-stack is not the operator's."""
    service_url = f"http://llama-stack-service.{STACK}.svc.cluster.local:8321"
    # No routeURL: the operator's *string with omitempty is left out, never null; this
    # apply's manager owned the previous test's routeURL, so leaving it out removes it.
    apply_documents(world, [llsd("llama-stack", {"phase": "Ready", "serviceURL": service_url})])
    assert endpoints(world, STACK, "in-cluster").resolve("llama-stack").url == service_url
    with pytest.raises(EndpointError) as caught:
        endpoints(world, STACK).resolve("llama-stack")
    message = str(caught.value)
    assert "has no status.routeURL" in message
    assert "reached only from inside the cluster" in message
    assert "port-forward:service/llama-stack-service:8321" in message


def test_without_a_llama_stack_server_the_route_of_the_name_is_the_fallback(world: Kube) -> None:
    with pytest.raises(EndpointError, match=f"there is no Route llama-stack in {OGX_LESS}"):
        endpoints(world, OGX_LESS).resolve("llama-stack")


def test_docling_is_reached_through_its_operators_route_or_service(world: Kube) -> None:
    apply_documents(
        world,
        [
            {
                "apiVersion": "docling.github.io/v1alpha1",
                "kind": "DoclingServe",
                "metadata": {"name": "docling", "namespace": ROUTES},
                "spec": {"apiServer": {"image": "quay.io/docling-project/docling-serve:latest",
                                       "instances": 1},
                         "engine": {"local": {"numWorkers": 2}}, "route": {"enabled": True}},
            },
            route("docling-route", ROUTES, [ingress("default", "True")]),
        ],
    )  # fmt: skip
    found = endpoints(world, ROUTES).resolve("docling")
    assert found.how == "Route docling-route of DoclingServe docling"
    inside = endpoints(world, ROUTES, "in-cluster").resolve("docling")
    assert inside.url == f"http://docling-service.{ROUTES}.svc.cluster.local:5001"


def test_a_red_call_through_a_route_carries_the_pods_behind_it_with_their_logs(
    world: Kube,
) -> None:
    """On a cluster target the step names what the Route leads to: its Service's pods (the
    not-ready first) and their last log lines, or why a log could not be read."""
    apply_documents(
        world,
        [
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "admitted", "namespace": ROUTES},
             "spec": {"selector": {"app": "admitted-model"}, "ports": [{"port": 8000}]}},
            {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "admitted-model-0", "namespace": ROUTES,
                          "labels": {"app": "admitted-model"}},
             "spec": {"containers": [{"name": "vllm", "image": "vllm:1"}]}},
        ],
    )  # fmt: skip
    found = endpoints(world, ROUTES).resolve("model", route="admitted")
    assert found.backend == "service/admitted"
    closed = replace(found, url="http://127.0.0.1:9")  # refused at once, the pods still known
    with pytest.raises(StepFailure) as caught:
        dataplane.served_models(closed)
    shown = {e.name: e.text for e in caught.value.evidence}
    assert "admitted-model-0" in shown["related pods"]
    assert "== pod admitted-model-0, container vllm\n(log not available" in shown["container logs"]


def test_an_explicit_url_names_no_backend_and_carries_only_its_exchange(world: Kube) -> None:
    target = replace(world.target, namespace=ROUTES, endpoints={"model": "http://127.0.0.1:9"})
    found = Endpoints(target, world, Discovery(world)).resolve("model")
    assert found.backend is None and found.backend_evidence() == []
