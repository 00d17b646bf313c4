"""Reaching the stage's services: an endpoint name resolved per target.

A target's ``endpoints`` map a name (``milvus``, ``model``, ``llama-stack``) to

- a URL;
- ``route:NAME``, an OpenShift Route in the stage namespace;
- ``port-forward:service/NAME:PORT[/PATH]`` or ``port-forward:pod/NAME:PORT[/PATH]``, a
  port-forward through the API server to a Ready pod behind the Service (PORT is the Service's
  port, by number or name) or to the named pod, reached as ``http://127.0.0.1:LOCAL/PATH``.
  This is how a kind cluster without ingress is reached.

An unmapped name falls back to what the operator that makes the service reports or creates:
``llama-stack`` to the Llama Stack server resource's ``status.routeURL`` (``externalURL`` for
an OGXServer), or from inside the cluster its ``status.serviceURL`` (the llama-stack operator
makes no Route: llama-stack-k8s-operator controllers/status.go, network_resources.go);
``docling`` to the DoclingServe's Route ``<name>-route``, or from inside the cluster its
Service ``<name>-service`` on 5001 (docling-operator internal/reconcilers/); any other name to
a Route of that name. A Route is used only through a router that admitted it
(``Admitted=True`` in ``status.ingress[]``, openshift/api route/v1/types.go).

The sandbox maps its data plane's loopback URLs, or its port-forwards
(``STAGECHECK_ENDPOINTS_VIA=port-forward``). TLS is verified unless the target lists the
endpoint in ``insecure-endpoints``. Port-forwards live until ``close()``.
An endpoint the target's ``endpoint-auth`` names carries that bearer token on every call (the
pipelines route sends the kubeconfig's by default: its proxy asks for one).
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from stagecheck.config import DEFAULT_ENDPOINT_TIMEOUT_S, PORT_FORWARD, Target
from stagecheck.engine.checks import pod_is_ready
from stagecheck.engine.evidence import pod_logs, pods_status
from stagecheck.engine.outcome import Evidence, StepFailure
from stagecheck.errors import EndpointError, PortForwardError, StagecheckError, UnknownKind
from stagecheck.kube.client import JsonObject, Kube
from stagecheck.kube.discovery import Discovery
from stagecheck.kube.portforward import PortForward
from stagecheck.redaction import remember

CONNECT_TIMEOUT_S = 5.0
TOKEN_SECONDS = 600  # a TokenRequest's lifetime: long enough for one run


@dataclass(frozen=True)
class BearerToken:
    value: str = field(repr=False)  # never printed
    origin: str  # for messages: "a TokenRequest for ServiceAccount ns/name"

    def __post_init__(self) -> None:
        remember(self.value)

    def header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.value}"}


@dataclass
class Responsiveness:
    """What the run has learnt of an endpoint: a call it let time out. Shared by every
    Endpoint the run resolves under that name, so later steps do not wait out a budget again."""

    silent: str | None = None  # "did not answer GET /v1/models within 60 s"
    # model -> how a completion through it failed in this run (Llama Stack: its provider
    # could not reach the model server); a later question to it is not asked again.
    unusable: dict[str, str] = field(default_factory=dict)

    def note_timeout(self, what: str, seconds: float) -> None:
        self.silent = f"it did not answer {what} within {seconds:.1f} s"

    def note_unusable(self, models: list[str], what: str) -> None:
        for model in models:
            self.unusable.setdefault(model, what)


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str  # without a trailing slash
    verify_tls: bool
    how: str  # how it was found, for messages: "explicit URL", "Route llama-stack"
    token: BearerToken | None = None  # sent with every call, where endpoint-auth names one
    # A port-forward's tunnel: what the far end said when a connection through it failed.
    tunnel: PortForward | None = field(default=None, repr=False, compare=False)
    health: Responsiveness = field(default_factory=Responsiveness, repr=False, compare=False)
    timeout_s: float = DEFAULT_ENDPOINT_TIMEOUT_S  # the target's endpoint-timeout
    # "service/NAME" or "pod/NAME" in the target namespace, when the way here names it.
    backend: str | None = None
    # The backend's pods and their logs, for a red step (bound by Endpoints, which has a client).
    collect: Callable[[], list[Evidence]] | None = field(default=None, repr=False, compare=False)
    # CA files trusted beside the system's: a pod's service account bundle (see Endpoints)
    trust: tuple[str, ...] = ()

    def tls(self) -> bool | ssl.SSLContext:
        """What a client verifies the endpoint's certificate with (False: not verified)."""
        if not self.verify_tls:
            return False
        return _trusting(self.trust) if self.trust else True

    def backend_evidence(self) -> list[Evidence]:
        """The pods behind the endpoint with their last log lines, where it is known which."""
        return self.collect() if self.collect is not None else []

    def tunnel_errors(self) -> list[str]:
        """What the tunnel's far end said since the run began (the last few), for messages."""
        return list(dict.fromkeys(self.tunnel.errors))[-3:] if self.tunnel else []

    def headers(self) -> dict[str, str]:
        return self.token.header() if self.token else {}

    def timeout(self) -> httpx.Timeout:
        """A call's budget: the target's endpoint-timeout, of which 5 s at most to connect."""
        return httpx.Timeout(self.timeout_s, connect=min(CONNECT_TIMEOUT_S, self.timeout_s))

    def client(self, timeout: float | httpx.Timeout | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            verify=self.tls(),
            timeout=self.timeout() if timeout is None else timeout,
            headers=self.headers(),
        )

    def describe(self) -> str:
        return f"{self.name} endpoint {self.url} ({self.how})"


def _account_bundles(account_dir: Path) -> tuple[str, ...]:
    """The CA bundles a pod's service account volume holds: ``ca.crt`` (on OpenShift it also
    holds the ingress operator's CA, which signs the default router certificate:
    cluster-kube-controller-manager-operator ``manageServiceAccountCABundle`` adds
    ``router-ca``) and, on OpenShift, ``service-ca.crt`` (the service CA that signs Services'
    serving certificates). An in-cluster run trusts them beside the system's store."""
    return tuple(
        str(f) for f in (account_dir / "ca.crt", account_dir / "service-ca.crt") if f.is_file()
    )


@functools.lru_cache(maxsize=8)
def _trusting(bundles: tuple[str, ...]) -> ssl.SSLContext:
    import certifi

    context = ssl.create_default_context(cafile=certifi.where())
    for bundle in bundles:
        context.load_verify_locations(cafile=bundle)
    return context


@contextmanager
def evidence_of(endpoint: Endpoint) -> Iterator[None]:
    """A red step inside the block carries the pods behind the endpoint with their logs."""
    try:
        yield
    except StepFailure as failure:
        failure.evidence.extend(endpoint.backend_evidence())
        raise


def with_backend_evidence[**P, R](call: Callable[P, R]) -> Callable[P, R]:
    """``evidence_of`` around a function whose first argument is the Endpoint, or has one."""

    @functools.wraps(call)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        first = args[0]
        endpoint = first if isinstance(first, Endpoint) else getattr(first, "endpoint")  # noqa: B009
        with evidence_of(endpoint):
            return call(*args, **kwargs)

    return wrapped


class Endpoints:
    def __init__(
        self,
        target: Target,
        kube: Kube,
        discovery: Discovery,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._target, self._kube, self._discovery = target, kube, discovery
        self._environ = environ or {}
        self._forwards: dict[str, tuple[PortForward, str]] = {}  # spec -> (tunnel, how)
        self._tokens: dict[str, BearerToken | None] = {}  # endpoint -> its token, once a run
        self._health: dict[str, Responsiveness] = {}  # endpoint -> what calls found, a run

    def close(self) -> None:
        for forward, _how in self._forwards.values():
            forward.close()
        self._forwards.clear()

    def resolve(
        self, name: str, fallback: tuple[str, str] | None = None, route: str | None = None
    ) -> Endpoint:
        """The named endpoint; when none is set, ``fallback`` (url, where it came from), else
        the Route ``route`` (default: the endpoint's name)."""
        found = replace(
            self._locate(name, fallback, route),
            health=self._health.setdefault(name, Responsiveness()),
            timeout_s=self._target.endpoint_timeout_s,
        )
        if self._target.in_cluster is not None:
            found = replace(found, trust=_account_bundles(self._target.in_cluster.account_dir))
        if found.backend is not None:
            backend = found.backend
            found = replace(found, collect=lambda: self._backend_evidence(backend))
        if name in self._target.endpoint_auth:
            return replace(found, token=self.bearer_token(name))
        return found

    def _locate(self, name: str, fallback: tuple[str, str] | None, route: str | None) -> Endpoint:
        spec = self._target.endpoints.get(name)
        verify = name not in self._target.insecure_endpoints
        if spec and spec.startswith(("http://", "https://")):
            return Endpoint(name, spec.rstrip("/"), verify, "explicit URL")
        if not spec and fallback is not None:
            return Endpoint(name, fallback[0].rstrip("/"), verify, fallback[1])
        if not spec and route is None:
            found = self._operator_made(name, verify)
            if found is not None:
                return found
        if spec and spec.startswith("port-forward:"):
            return self._forwarded(name, spec, verify)
        route = spec.removeprefix("route:") if spec else route or name
        routed = self._route_url(route)
        if routed is None:
            raise EndpointError(
                f"no {name!r} endpoint for {self._target.describe()}: no URL is configured and "
                f"there is no Route {route} in {self._target.namespace}; add "
                f'[targets.{self._target.name}.endpoints] {name} = "https://...", '
                f'"route:NAME" or "port-forward:service/NAME:PORT" to stagecheck.toml'
                + (" (is the sandbox's data plane up? scripts/sandbox up)"
                   if self._target.type == "sandbox" else "")
            )  # fmt: skip
        url, service = routed
        return Endpoint(name, url, verify, f"Route {route}", backend=service)

    def _backend_evidence(self, backend: str) -> list[Evidence]:
        """The backend's pods (a Service's by its selector) and their logs; a read that fails
        is said in the evidence, never the step's failure."""
        namespace = self._target.namespace
        kind, _, name = backend.partition("/")
        try:
            if kind == "pod":
                pods = [self._kube.get(f"/api/v1/namespaces/{namespace}/pods/{name}")]
            else:
                service = self._kube.get(f"/api/v1/namespaces/{namespace}/services/{name}")
                selected = self._pods_selected_by(service)
                if selected is None:
                    return [Evidence(f"pods of Service {name}", "(it has no selector)")]
                pods = selected
        except StagecheckError as error:
            return [Evidence(f"pods behind {backend}", f"(could not be read: {error})")]
        pods.sort(key=lambda p: (pod_is_ready(p), p["metadata"]["name"]))  # not ready first
        if not pods:
            return [Evidence(f"pods behind {backend}", "(no pod matches its selector)")]
        return [e for e in (pods_status(pods), pod_logs(self._kube, pods)) if e is not None]

    def bearer_token(self, name: str) -> BearerToken | None:
        """The token the target's ``endpoint-auth`` names for the endpoint (default: the
        kubeconfig's); None when there is none to send. Obtained once a run."""
        if name not in self._tokens:
            self._tokens[name] = self._obtain_token(name)
        return self._tokens[name]

    def _obtain_token(self, name: str) -> BearerToken | None:
        source = self._target.endpoint_auth.get(name, "kubeconfig")
        if source == "none":
            return None
        if source == "kubeconfig":
            token = self._kube.bearer_token()
            return BearerToken(token, "the kubeconfig's token") if token else None
        if source.startswith("env:"):
            variable = source.removeprefix("env:")
            if not self._environ.get(variable):
                raise EndpointError(
                    f"the {name} endpoint's token comes from the environment variable {variable} "
                    f"(endpoint-auth of {self._target.describe()}), which is not set"
                )
            return BearerToken(self._environ[variable], f"the environment variable {variable}")
        account = source.removeprefix("serviceaccount:")
        namespace = self._target.namespace
        try:
            token = self._kube.request_token(namespace, account, TOKEN_SECONDS)
        except StagecheckError as error:
            raise EndpointError(
                f"no token for the {name} endpoint: a TokenRequest for ServiceAccount "
                f"{namespace}/{account} failed: {error}"
            ) from None
        return BearerToken(token, f"ServiceAccount {namespace}/{account}")

    def _forwarded(self, name: str, spec: str, verify: bool) -> Endpoint:
        found = PORT_FORWARD.match(spec)
        if not found:
            raise EndpointError(
                f"endpoint {name!r} of {self._target.describe()} is {spec!r}; a port-forward is "
                "written port-forward:service/NAME:PORT or port-forward:pod/NAME:PORT, "
                "optionally followed by a path"
            )
        path = (found["path"] or "").rstrip("/")
        if spec not in self._forwards:
            if found["kind"] == "pod":
                pod = self._pod(found["name"])
                port, how = _container_port(pod, found["port"]), f"pod {found['name']}"
            else:
                pod, port, how = self._service_backend(found["name"], found["port"])
            forward = self._kube.port_forward(self._target.namespace, pod["metadata"]["name"], port)
            try:
                forward.check()
            except PortForwardError as error:
                forward.close()
                raise EndpointError(
                    f"{name} endpoint: {error}; the {how} cannot be reached through a "
                    "port-forward (on the sandbox, kwok forwards only ports its PortForward "
                    "resources name)"
                ) from None
            self._forwards[spec] = (forward, f"port-forward to {forward.describe()} via {how}")
        forward, how = self._forwards[spec]
        url = f"http://127.0.0.1:{forward.local_port}{path}"
        backend = f"{found['kind']}/{found['name']}"
        return Endpoint(name, url, verify, how, tunnel=forward, backend=backend)

    def _pod(self, name: str) -> dict[str, Any]:
        pod = self._kube.get_or_none(f"/api/v1/namespaces/{self._target.namespace}/pods/{name}")
        if pod is None:
            raise EndpointError(f"no pod {name} in {self._target.namespace} to port-forward to")
        return pod

    def _pods_selected_by(self, service: JsonObject) -> list[JsonObject] | None:
        """The pods a Service's selector picks; None when it has no selector."""
        selector = service.get("spec", {}).get("selector") or {}
        if not selector:
            return None
        query = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        path = f"/api/v1/namespaces/{self._target.namespace}/pods"
        items: list[JsonObject] = self._kube.get(path, {"labelSelector": query})["items"]
        return items

    def _service_backend(self, service: str, port: str) -> tuple[dict[str, Any], int, str]:
        """A Ready pod behind the Service, and the pod port its ``port`` leads to."""
        namespace = self._target.namespace
        found = self._kube.get_or_none(f"/api/v1/namespaces/{namespace}/services/{service}")
        if found is None:
            raise EndpointError(f"no Service {service} in {namespace} to port-forward to")
        ports = found["spec"].get("ports", [])
        chosen = next((p for p in ports if port in (str(p["port"]), p.get("name"))), None)
        if chosen is None:
            listed = ", ".join(f"{p.get('name', '')}:{p['port']}" for p in ports) or "none"
            raise EndpointError(f"Service {namespace}/{service} has no port {port} ({listed})")
        pods = self._pods_selected_by(found)
        if pods is None:
            raise EndpointError(f"Service {namespace}/{service} has no selector: no pod behind it")
        ready = sorted((p for p in pods if pod_is_ready(p)), key=lambda p: p["metadata"]["name"])
        if not ready:
            seen = ", ".join(
                f"{p['metadata']['name']} ({p.get('status', {}).get('phase', '?')}, not Ready)"
                for p in pods
            )
            raise EndpointError(
                f"Service {namespace}/{service} has no Ready pod to port-forward to"
                + (f": {seen}" if seen else f": no pod matches {found['spec']['selector']}")
            )
        target = str(chosen.get("targetPort", chosen["port"]))
        return ready[0], _container_port(ready[0], target), f"Service {service}"

    def _route_url(self, name: str) -> tuple[str, str | None] | None:
        """The URL of the Route through a router that admitted it, and the Service it leads
        to; None when there is no such Route; an EndpointError naming each router's verdict
        when no router admitted it."""
        try:
            routes = self._discovery.resolve("Route.route.openshift.io")
        except UnknownKind:
            return None
        route = self._kube.get_or_none(routes.object_path(name, self._target.namespace))
        if route is None:
            return None
        scheme = "https" if route.get("spec", {}).get("tls") else "http"
        ingresses = route.get("status", {}).get("ingress") or []
        for ingress in ingresses:
            if _admitted(ingress).get("status") == "True" and ingress.get("host"):
                to = route.get("spec", {}).get("to") or {}
                service = f"service/{to['name']}" if to.get("name") else None
                return f"{scheme}://{ingress['host']}", service
        where = f"Route {self._target.namespace}/{name}"
        if not ingresses:
            raise EndpointError(
                f"{where} is not admitted by any router (status.ingress is empty): no router "
                "serves its host yet; is the router running, does the route's shard select it?"
            )
        verdicts = "; ".join(_verdict(i) for i in ingresses)
        raise EndpointError(f"{where} is not admitted, so it cannot be used: {verdicts}")

    def _operator_made(self, name: str, verify: bool) -> Endpoint | None:
        """The unmapped endpoint where its operator publishes it (see the module's doc)."""
        if name == "llama-stack":
            return self._llama_stack(verify)
        if name == "docling":
            return self._docling(verify)
        return None

    def _served_items(self, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for kind in kinds:
            try:
                resource = self._discovery.resolve(kind)
            except UnknownKind:
                continue
            path = resource.collection_path(self._target.namespace)
            found.extend(self._kube.get(path).get("items", []))
        return sorted(found, key=lambda o: (o.get("kind", ""), o["metadata"]["name"]))

    def _llama_stack(self, verify: bool) -> Endpoint | None:
        servers = self._served_items(LLAMA_STACK_KINDS)
        if not servers:
            return None
        if len(servers) > 1:
            listed = ", ".join(f"{o['kind']} {o['metadata']['name']}" for o in servers)
            raise EndpointError(
                f"no llama-stack endpoint is configured and {self._target.namespace} holds "
                f"several Llama Stack servers ({listed}); name one in [targets."
                f'{self._target.name}.endpoints] llama-stack = "..."'
            )
        server = servers[0]
        status = server.get("status") or {}
        what = f"{server['kind']} {server['metadata']['name']}"
        external = "externalURL" if server["kind"] == "OGXServer" else "routeURL"
        service = f"{server['metadata']['name']}-service"  # the operator's name for it
        if status.get(external):
            return Endpoint(
                "llama-stack", str(status[external]).rstrip("/"), verify,
                f"status.{external} of {what}", backend=f"service/{service}",
            )  # fmt: skip
        service_url = status.get("serviceURL")
        if service_url and self._target.type == "in-cluster":
            return Endpoint(
                "llama-stack", str(service_url).rstrip("/"), verify,
                f"status.serviceURL of {what}", backend=f"service/{service}",
            )  # fmt: skip
        raise EndpointError(
            f"no llama-stack endpoint for {self._target.describe()}: {what} has no "
            f"status.{external} (its operator exposes the server only with spec.network."
            f"{'externalAccess.enabled' if external == 'externalURL' else 'exposeRoute'}) and "
            + (f"its status.serviceURL {service_url} is reached only from inside the cluster"
               if service_url else "no status.serviceURL (no Service, or the operator has not "
               "reported yet)")
            + f'; set [targets.{self._target.name}.endpoints] llama-stack = "https://..." or '
            f'"port-forward:service/{service}:8321" in stagecheck.toml'
        )  # fmt: skip

    def _docling(self, verify: bool) -> Endpoint | None:
        servers = self._served_items(("DoclingServe.docling.github.io",))
        if not servers:
            return None
        name = servers[0]["metadata"]["name"]
        if self._target.type == "in-cluster":
            service = f"http://{name}-service.{self._target.namespace}.svc.cluster.local:5001"
            how = f"Service {name}-service of DoclingServe {name}"
            return Endpoint("docling", service, verify, how, backend=f"service/{name}-service")
        route = f"{name}-route"
        routed = self._route_url(route)
        if routed is None:
            enabled = (servers[0].get("spec", {}).get("route") or {}).get("enabled")
            raise EndpointError(
                f"no docling endpoint for {self._target.describe()}: DoclingServe {name} has no "
                f"Route {route} in {self._target.namespace}"
                + ("" if enabled else " (its operator makes one only with spec.route.enabled: "
                   "true)")
                + f'; set [targets.{self._target.name}.endpoints] docling = "https://..." or '
                f'"port-forward:service/{name}-service:5001" in stagecheck.toml'
            )  # fmt: skip
        url, backend = routed
        how = f"Route {route} of DoclingServe {name}"
        return Endpoint("docling", url, verify, how, backend=backend)


LLAMA_STACK_KINDS = ("LlamaStackDistribution.llamastack.io", "OGXServer.ogx.io")


def _admitted(ingress: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in ingress.get("conditions") or [] if c.get("type") == "Admitted"), {})


def _verdict(ingress: dict[str, Any]) -> str:
    """One router's word: ``router default: Admitted=False (HostAlreadyClaimed: ...)``."""
    condition = _admitted(ingress)
    router = ingress.get("routerName") or "(unnamed)"
    if not condition:
        return f"router {router} has not admitted it (no Admitted condition)"
    detail = ": ".join(str(condition[k]) for k in ("reason", "message") if condition.get(k))
    said = f" ({detail})" if detail else ""
    return f"router {router}: Admitted={condition.get('status')}{said}"


def _container_port(pod: dict[str, Any], port: str) -> int:
    if port.isdigit():
        return int(port)
    for container in pod["spec"]["containers"]:
        for declared in container.get("ports", []):
            if declared.get("name") == port:
                return int(declared["containerPort"])
    raise EndpointError(f"pod {pod['metadata']['name']} declares no port named {port}")
