"""Reaching the stage's services: an endpoint name resolved per target.

A target's ``endpoints`` map a name (``milvus``, ``model``, ``llama-stack``) to a URL, or to
``route:NAME`` (an OpenShift Route in the stage namespace). An unmapped name falls back to a
Route of that name. The sandbox maps its data plane's loopback URLs. TLS is verified unless
the target lists the endpoint in ``insecure-endpoints``.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from stagecheck.config import Target
from stagecheck.errors import StagecheckError, UnknownKind
from stagecheck.kube.client import Kube
from stagecheck.kube.discovery import Discovery

TIMEOUT = httpx.Timeout(60.0, connect=5.0)


class EndpointError(StagecheckError):
    """A service the feature needs cannot be located or does not answer."""


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str  # without a trailing slash
    verify_tls: bool
    how: str  # how it was found, for messages: "explicit URL", "Route llama-stack"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=self.verify_tls, timeout=TIMEOUT)

    def describe(self) -> str:
        return f"{self.name} endpoint {self.url} ({self.how})"


class Endpoints:
    def __init__(self, target: Target, kube: Kube, discovery: Discovery) -> None:
        self._target, self._kube, self._discovery = target, kube, discovery

    def resolve(self, name: str, fallback: tuple[str, str] | None = None) -> Endpoint:
        """The named endpoint; ``fallback`` is (url, where it came from) when none is set."""
        spec = self._target.endpoints.get(name)
        verify = name not in self._target.insecure_endpoints
        if spec and spec.startswith(("http://", "https://")):
            return Endpoint(name, spec.rstrip("/"), verify, "explicit URL")
        if not spec and fallback is not None:
            return Endpoint(name, fallback[0].rstrip("/"), verify, fallback[1])
        route = spec.removeprefix("route:") if spec else name
        url = self._route_url(route)
        if url is None:
            raise EndpointError(
                f"no {name!r} endpoint for {self._target.describe()}: no URL is configured and "
                f"there is no Route {route} in {self._target.namespace}; add "
                f'[targets.{self._target.name}.endpoints] {name} = "https://..." or '
                f'"route:NAME" to stagecheck.toml'
                + (" (is the sandbox's data plane up? scripts/sandbox up)"
                   if self._target.type == "sandbox" else "")
            )  # fmt: skip
        return Endpoint(name, url, verify, f"Route {route}")

    def _route_url(self, name: str) -> str | None:
        try:
            routes = self._discovery.resolve("Route.route.openshift.io")
        except UnknownKind:
            return None
        route = self._kube.get_or_none(routes.object_path(name, self._target.namespace))
        if route is None:
            return None
        ingress = (route.get("status", {}).get("ingress") or [{}])[0]
        host = ingress.get("host") or route.get("spec", {}).get("host")
        if not host:
            return None
        scheme = "https" if route.get("spec", {}).get("tls") else "http"
        return f"{scheme}://{host}"
