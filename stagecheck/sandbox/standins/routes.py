"""A stand-in for OpenShift's route host assignment and its default router: NOT OpenShift.

Rules followed:
- Host assignment (openshift/library-go pkg/route/hostassignment/assignment.go
  ``AllocateHost``): a Route with neither ``spec.host`` nor ``spec.subdomain`` gets the host
  ``<name with "." as "-">-<namespace>.<apps domain>`` and the annotation
  ``openshift.io/host.generated: "true"``. With a subdomain: ``<subdomain>.<apps domain>``.
- The router (openshift/api route/v1/types.go ``RouteIngress``; openshift/router's unique-host
  admission): one ``status.ingress[]`` entry per router, here the one router ``default``, with
  ``host``, ``routerName``, ``wildcardPolicy``, ``routerCanonicalHostname`` and an ``Admitted``
  condition. Two Routes claiming the same host and path: the older (creation time, then name)
  is admitted, the other gets ``Admitted=False`` reason ``HostAlreadyClaimed``.
- A Route naming a Service that does not exist is still admitted (the router admits by host;
  it has no endpoints then).

Where it knowingly differs: the real host is assigned at admission, before the object is
stored; here a moment after it is created, by this controller. The rejection message wording
follows the router only in substance (the exact text was not verified). No route shards, no
namespace ownership policy (``InterNamespaceAllowed``), no TLS validation.
"""

from __future__ import annotations

from typing import Any

from stagecheck.kube.client import JsonObject
from stagecheck.sandbox.standins.base import Context, Reconciler, condition, write_status

APPS_DOMAIN = "apps.sandbox.local"
ROUTER = "default"
HOST_GENERATED = "openshift.io/host.generated"
KIND = "Route.route.openshift.io"
# The router's own namespace as OpenShift labels it: what a NetworkPolicy admits the router by
ROUTER_POLICY_GROUP = "network.openshift.io/policy-group"
ROUTER_NAMESPACE_LABELS = {
    ROUTER_POLICY_GROUP: "ingress",
    "kubernetes.io/metadata.name": "openshift-ingress",
}


def generated_host(route: JsonObject) -> str:
    meta, spec = route["metadata"], route.get("spec") or {}
    if spec.get("subdomain"):
        return f"{spec['subdomain']}.{APPS_DOMAIN}"
    return f"{meta['name'].replace('.', '-')}-{meta['namespace']}.{APPS_DOMAIN}"


class RouteStandin(Reconciler):
    name = "route-host-and-router-standin"

    def reconcile(self, ctx: Context) -> None:
        resource = ctx.served(KIND)
        if resource is None:
            return
        routes = ctx.items(KIND)
        for route in routes:
            spec = route.get("spec") or {}
            if not spec.get("host"):
                meta = route["metadata"]
                path = resource.object_path(meta["name"], meta["namespace"])
                route = ctx.kube.patch(
                    path,
                    {
                        "metadata": {"annotations": {HOST_GENERATED: "true"}},
                        "spec": {"host": generated_host(route)},
                    },
                )
                ctx.writes += 1
        routes = ctx.items(KIND)
        claims = _claims(routes)
        for route in routes:
            write_status(ctx, route, {"ingress": [_ingress(route, claims)]})


def _key(route: JsonObject) -> tuple[str, str]:
    spec = route.get("spec") or {}
    return (spec.get("host") or "", spec.get("path") or "")


def _claims(routes: list[JsonObject]) -> dict[tuple[str, str], JsonObject]:
    """Host and path -> the Route that holds it: the oldest."""
    held: dict[tuple[str, str], JsonObject] = {}
    for route in sorted(
        routes, key=lambda r: (r["metadata"]["creationTimestamp"], r["metadata"]["name"])
    ):
        held.setdefault(_key(route), route)
    return held


def _ingress(route: JsonObject, claims: dict[tuple[str, str], JsonObject]) -> dict[str, Any]:
    host = (route.get("spec") or {}).get("host") or ""
    previous = next(
        (i.get("conditions") for i in (route.get("status") or {}).get("ingress") or []
         if i.get("routerName") == ROUTER),
        None,
    )  # fmt: skip
    holder = claims[_key(route)]
    if holder["metadata"]["uid"] == route["metadata"]["uid"]:
        admitted = condition(previous, "Admitted", "True")
    else:
        other = holder["metadata"]
        message = (
            f"route {other['name']} already exposes {host} and is older"
            if other["namespace"] == route["metadata"]["namespace"]
            else f"a route in another namespace holds {host} and is older than "
            f"{route['metadata']['name']}"
        )
        admitted = condition(previous, "Admitted", "False", "HostAlreadyClaimed", message)
    return {
        "host": host,
        "routerName": ROUTER,
        "wildcardPolicy": (route.get("spec") or {}).get("wildcardPolicy") or "None",
        "routerCanonicalHostname": f"router-{ROUTER}.{APPS_DOMAIN}",
        "conditions": [admitted],
    }
