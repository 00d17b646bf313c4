"""A stand-in for the mesh's data path: who may call a service that accepts only mTLS.

Rules followed (OpenShift Service Mesh 2.x):
- ``spec.security.dataPlane.mtls: true`` on a ServiceMeshControlPlane makes mTLS STRICT for the
  whole mesh (a mesh-wide PeerAuthentication ``default`` in the control plane's namespace;
  maistra/istio-operator maistra-2.5 pkg/apis/maistra/conversion/security.go maps it to
  ``global.mtls.enabled``; the template that turns it into the policy is **unverified**).
- A namespace is in that mesh when the member controller labelled it
  ``maistra.io/member-of=<mesh namespace>`` or the ServiceMeshMemberRoll ``default`` lists it
  (notes/operators.md §2, [MO]:pkg/controller/servicemesh/member/namespace_reconciler.go).
- STRICT is enforced by the destination's sidecar: a Service whose pods carry ``istio-proxy``
  in a STRICT mesh resets a plaintext connection; a caller's own sidecar upgrades its call to
  mTLS, so a caller with ``istio-proxy`` passes. Services whose pods have no sidecar, and
  anything outside the cluster's Services, are reached plainly by everyone.
- PeerAuthentications (security.istio.io) of the Service's namespace refine it, by Istio's
  precedence: the policy selecting the workload over the namespace's over the mesh's, a mode
  ``UNSET`` inheriting, ``portLevelMtls`` by the workload's port number (``_strict_ports``).
- The router (OpenShift's, outside the mesh, in a namespace labelled
  ``network.openshift.io/policy-group=ingress``) reaches a Route's pods only where the
  namespace's NetworkPolicies admit it: the mesh copies ``istio-mesh-<smcp>`` (member
  namespaces only) and ``istio-expose-route-<smcp>`` (the router, to pods labelled
  ``maistra.io/expose-route=true``) into each member (mesh.py); policies add up
  (``_router_admitted``). Refused, the router answers its own 503 "Application is not
  available" (it cannot connect).

How the sandbox stands in: each caller gets its own HTTP proxy listener on loopback, bound to
its identity (a pod the stand-in node runs, or a workload's pods by label, such as Llama
Stack's data-plane process behind the pods ``app=llama-stack``). A request to
``http://<service>.<ns>.svc...`` is resolved to the data-plane process answering for that
Service (``Context.service_url``, what cluster DNS and the Service would do); loopback and
other hosts are forwarded as they are. A refused call is answered with a TCP reset (curl: exit
56), as a STRICT sidecar resets a plaintext connection. A cluster name no Service of the world
has does not resolve: the gate answers 502 at once, saying so (as the caller's own DNS lookup
would fail, before any connection).

Answers are marked as Envoy marks them, so a reader can tell who answered: what the gate
answers itself (a request it cannot proxy) carries ``server: istio-envoy`` and no
``x-envoy-upstream-service-time``, as an Envoy local reply does; an answer it forwards from a
cluster Service carries ``x-envoy-upstream-service-time`` (the milliseconds the upstream took),
which Envoy's router adds only to answers that came from an upstream.

``CONNECT host:port`` (how gRPC clients and ``https`` URLs use a proxy) opens a byte tunnel to
the same destination under the same rule: Milvus's gRPC from a pod goes through it. A CONNECT
to an admitted Route's host on port 443 is the router's data path instead (OpenShift's router
is outside the mesh): TLS ends at the gate with the router's default certificate
(``*.apps.sandbox.local``, signed by the cluster's CA; ``router_certificate``), and the request
goes on to the Route's Service as a caller without a sidecar.

Knowingly different: no mTLS certificates or AuthorizationPolicies (a tunnel carries what the
caller sends); the caller's sidecar is judged by its pod spec (container ``istio-proxy``), not
by a running Envoy; NetworkPolicies are applied to the router's calls only (matchLabels
selectors, no ports, ipBlocks or matchExpressions), where every pod-to-pod call in the stage's
namespace is one the mesh's own policy admits. Identities and the mesh's table are
refreshed on every pass of the stand-ins; the gate writes nothing to the cluster.
"""

from __future__ import annotations

import json
import select
import socket
import socketserver
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from stagecheck.kube.client import JsonObject
from stagecheck.sandbox.standins.base import Context, Reconciler
from stagecheck.sandbox.standins.routes import APPS_DOMAIN, ROUTER_NAMESPACE_LABELS
from stagecheck.sandbox.standins.routes import KIND as ROUTE

PEER_AUTHENTICATION = "PeerAuthentication.security.istio.io"

SIDECAR = "istio-proxy"
GATES_FILE = Path("standins") / "mesh-gate.json"
READ_TIMEOUT_S = 30.0
UNRESOLVED = ("", -1)  # a route: the name does not resolve
# The router's own 503 page when no endpoint answers (openshift/router's error page title)
ROUTER_UNAVAILABLE = "Application is not available"
MAX_HEADER_BYTES = 65536


@dataclass(frozen=True)
class Workload:
    """A caller known by its pods' labels (its process runs in the data plane)."""

    namespace: str
    selector: str  # "key=value[,key=value]"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.selector}"


@dataclass
class MeshTable:
    """What the gate decides by, rebuilt each pass: service -> loopback base, strict services."""

    backends: dict[str, str] = field(default_factory=dict)  # "svc.ns" or "svc" -> base URL
    # "svc.ns" behind a sidecar in a STRICT mesh -> its ports that accept only mTLS
    strict: dict[str, frozenset[int]] = field(default_factory=dict)
    workload_sidecar: dict[str, bool] = field(default_factory=dict)  # Workload.key -> sidecar
    services: set[str] = field(default_factory=set)  # "svc.ns" of every Service of the world
    # admitted Route host -> ("svc.ns.svc", the Service port its targetPort names, whether the
    # namespace's NetworkPolicies let the router in)
    routes: dict[str, tuple[str, int, bool]] = field(default_factory=dict)


class _Listener(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, gate: MeshGateStandin, caller: str, has_sidecar: Callable[[], bool], port: int = 0
    ) -> None:
        self.gate, self.caller, self.has_sidecar = gate, caller, has_sidecar
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(socketserver.BaseRequestHandler):
    server: _Listener

    def handle(self) -> None:
        client: socket.socket = self.request
        client.settimeout(READ_TIMEOUT_S)
        read = _read_head(client)
        if read is None:
            return
        head, early = read
        line, _, rest = head.partition(b"\r\n")
        parts = line.decode("latin-1").split(" ")
        if len(parts) != 3:
            _answer(client, 400, "not an HTTP/1.1 proxy request", envoy=True)
            return
        method, target, version = parts
        if method == "CONNECT":
            self._tunnel(client, target, early)
            return
        url = urlsplit(target)
        if not url.hostname:
            _answer(client, 400, "a proxy request needs an absolute URL", envoy=True)
            return
        port = url.port or 80
        decision = self.server.gate.route(url.hostname, self.server.has_sidecar(), port)
        destination = _destination(client, decision, url.hostname, port)
        if destination is None:
            return
        host, port = destination
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        headers = [
            h
            for h in rest.split(b"\r\n")
            if h and not h.lower().startswith((b"proxy-connection:", b"connection:"))
        ]
        request = f"{method} {path} {version}\r\n".encode() + b"\r\n".join(
            [*headers, b"Connection: close", b"", b""]
        )
        try:
            upstream = socket.create_connection((host, port), timeout=READ_TIMEOUT_S)
        except OSError as error:
            _answer(client, 502, f"the mesh gate cannot reach {url.hostname}: {error}")
            return
        with upstream:
            started = time.monotonic()
            upstream.sendall(request + early)
            _pipe(client, upstream, started if ".svc" in url.hostname else None)

    def _tunnel(self, client: socket.socket, target: str, early: bytes) -> None:
        """``CONNECT host:port``: a byte tunnel (gRPC, TLS) to what the name resolves to, under
        the same mesh rule as a plain request."""
        name, _, port_text = target.rpartition(":")
        if not name or not port_text.isdigit():
            _answer(client, 400, "CONNECT needs host:port", envoy=True)
            return
        gate = self.server.gate
        routed = gate.routed(name) if port_text == "443" else None
        if routed and not routed[2]:  # a NetworkPolicy drops the router's connection
            self._through_router(client, name, None)
            return
        if routed:  # through a Route: the router (outside the mesh) calls the Route's Service
            decision = gate.route(routed[0], False, routed[1])
        else:
            decision = gate.route(name, self.server.has_sidecar(), int(port_text))
        address = _destination(client, decision, name, int(port_text))
        if address is None:
            return
        if routed:
            self._through_router(client, name, address)
            return
        try:
            upstream = socket.create_connection(address, timeout=READ_TIMEOUT_S)
        except OSError as error:
            _answer(client, 502, f"the mesh gate cannot reach {name}: {error}")
            return
        with upstream:
            upstream.settimeout(None)  # a tunnel may idle (a gRPC channel between calls)
            client.settimeout(None)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if early:
                upstream.sendall(early)
            _pipe(client, upstream, None)

    def _through_router(
        self, client: socket.socket, host: str, address: tuple[str, int] | None
    ) -> None:
        """The router's data path for an edge or re-encrypt Route: TLS ends here, with the
        router's default certificate, and the request goes on to the Route's Service. None:
        the router cannot connect (a NetworkPolicy drops it), so it answers its own 503."""
        context = self.server.gate.router_tls
        if context is None:
            _answer(client, 503, "the sandbox's router has no certificate", envoy=False)
            return
        client.settimeout(None)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        try:
            secured = context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the caller did not trust the certificate: it says so itself
        try:
            upstream = (
                socket.create_connection(address, timeout=READ_TIMEOUT_S) if address else None
            )
        except OSError:
            upstream = None
        if upstream is None:
            with secured:
                _read_head(secured)  # read before answering: closing on unread data resets
                _answer(secured, 503, ROUTER_UNAVAILABLE)
            return
        with upstream, secured:
            _relay(secured, upstream)


class MeshGateStandin(Reconciler):
    """The mesh's rule in front of in-cluster services, one proxy listener per caller."""

    name = "mesh-gate-standin"

    def __init__(self, workloads: tuple[Workload, ...] = ()) -> None:
        self.workloads = workloads
        self._table = MeshTable()
        self._lock = threading.Lock()
        self._listeners: dict[str, _Listener] = {}
        self._gates_file: Path | None = None
        self.router_tls: ssl.SSLContext | None = None

    # -- callers ------------------------------------------------------------------------------
    def open(self, caller: str, has_sidecar: Callable[[], bool], port: int = 0) -> str:
        """A proxy URL for ``caller`` (``ns/pod`` or a workload key), on ``port`` if it is
        free; idempotent."""
        with self._lock:
            listener = self._listeners.get(caller)
            if listener is None:
                try:
                    listener = _Listener(self, caller, has_sidecar, port)
                except OSError:  # taken meanwhile: any free port
                    listener = _Listener(self, caller, has_sidecar)
                threading.Thread(
                    target=listener.serve_forever, name=f"gate {caller}", daemon=True
                ).start()
                self._listeners[caller] = listener
            return listener.url

    def close(self, caller: str) -> None:
        with self._lock:
            listener = self._listeners.pop(caller, None)
        if listener is not None:
            listener.shutdown()
            listener.server_close()

    def route(self, host: str, caller_has_sidecar: bool, port: int) -> tuple[str, int] | None:
        """Where a call to ``host``:``port`` goes: (host, port) of the process answering,
        ("", 0) to go to the host as named, ``UNRESOLVED`` for a cluster name no Service has,
        or None when the mesh resets it."""
        with self._lock:
            table = self._table
        if ".svc" not in host:
            return ("", 0)
        labels = host.split(".")
        service = ".".join(labels[:2])
        if port in table.strict.get(service, ()) and not caller_has_sidecar:
            return None
        base = table.backends.get(service) or table.backends.get(labels[0])
        if base is None and service in table.services:
            return None  # a Service, but no process answers for it here: the call fails
        if base is None:
            return UNRESOLVED  # no Service of the world has that name: it does not resolve
        root = urlsplit(base)
        return (root.hostname or "127.0.0.1", root.port or 80)

    def routed(self, host: str) -> tuple[str, int, bool] | None:
        """The Service (``svc.ns.svc``, port) an admitted Route with this host sends to, and
        whether the router may connect to its pods."""
        with self._lock:
            return self._table.routes.get(host)

    def workload_has_sidecar(self, workload: Workload) -> bool:
        with self._lock:
            return self._table.workload_sidecar.get(workload.key, False)

    # -- controller ---------------------------------------------------------------------------
    def start(self, ctx: Context) -> None:
        self._gates_file = ctx.state_dir / GATES_FILE
        self.router_tls = router_certificate(ctx.state_dir)
        # A restarted gate keeps its ports: the data plane's processes were given them.
        before = gate_urls(ctx.state_dir)
        gates = {
            w.key: self.open(
                w.key,
                lambda w=w: self.workload_has_sidecar(w),  # type: ignore[misc]
                urlsplit(before[w.key]).port or 0 if w.key in before else 0,
            )
            for w in self.workloads
        }
        self._gates_file.parent.mkdir(parents=True, exist_ok=True)
        partial = self._gates_file.with_suffix(".partial")
        partial.write_text(json.dumps({"workloads": gates}))
        partial.replace(self._gates_file)

    def stop(self) -> None:
        for caller in list(self._listeners):
            self.close(caller)  # the record stays: a restarted gate takes the same ports

    def reconcile(self, ctx: Context) -> None:
        table = MeshTable()
        table.services = {
            f"{s['metadata']['name']}.{s['metadata']['namespace']}" for s in ctx.items("Service")
        }
        for name in ctx.backends:
            if base := ctx.service_url(name):
                table.backends[name] = base
        strict_meshes = {
            smcp["metadata"]["namespace"]
            for smcp in ctx.items("ServiceMeshControlPlane.maistra.io")
            if ((smcp.get("spec") or {}).get("security") or {}).get("dataPlane", {}).get("mtls")
        }
        members = _mesh_members(ctx, strict_meshes)
        pods_by_ns: dict[str, list[JsonObject]] = {}
        policies = ctx.served(PEER_AUTHENTICATION) is not None
        for namespace in members:
            pods_by_ns[namespace] = ctx.items("Pod", namespace)
            peer = ctx.items(PEER_AUTHENTICATION, namespace) if policies else []
            for service in ctx.items("Service", namespace):
                selector = (service.get("spec") or {}).get("selector") or {}
                behind = [p for p in pods_by_ns[namespace] if _selected(p, selector)]
                if selector and any(_has_sidecar(p) for p in behind):
                    if ports := _strict_ports(service, behind, peer):
                        table.strict[f"{service['metadata']['name']}.{namespace}"] = ports
                    base = table.backends.get(service["metadata"]["name"])
                    if base:
                        table.backends[f"{service['metadata']['name']}.{namespace}"] = base
        if ctx.served(ROUTE) is not None:
            for route in ctx.items(ROUTE):
                spec, ingress = route.get("spec") or {}, (route.get("status") or {}).get("ingress")
                admitted = any(
                    c.get("type") == "Admitted" and c.get("status") == "True"
                    for i in ingress or []
                    for c in i.get("conditions") or []
                )
                to = (spec.get("to") or {}).get("name")
                namespace = route["metadata"]["namespace"]
                target = ctx.get("Service", to, namespace) if admitted and to else None
                if target is not None and spec.get("host"):
                    port = _service_port(target, (spec.get("port") or {}).get("targetPort"))
                    selector = (target.get("spec") or {}).get("selector") or {}
                    behind = [p for p in ctx.items("Pod", namespace) if _selected(p, selector)]
                    network = ctx.items("NetworkPolicy.networking.k8s.io", namespace)
                    admits = _router_admitted(behind, network)
                    table.routes[spec["host"]] = (f"{to}.{namespace}.svc", port, admits)
        for workload in self.workloads:
            pods = pods_by_ns.get(workload.namespace)
            if pods is None:
                pods = ctx.items("Pod", workload.namespace)
            selector = dict(kv.split("=", 1) for kv in workload.selector.split(","))
            mine = [p for p in pods if _selected(p, selector)]
            table.workload_sidecar[workload.key] = bool(mine) and all(map(_has_sidecar, mine))
        with self._lock:
            self._table = table


def gate_urls(state_dir: Path) -> dict[str, str]:
    """The workloads' gate URLs as the running stand-ins recorded them (empty: none)."""
    try:
        return dict(json.loads((state_dir / GATES_FILE).read_text()).get("workloads") or {})
    except (FileNotFoundError, ValueError):
        return {}


def _mesh_members(ctx: Context, meshes: set[str]) -> set[str]:
    if not meshes:
        return set()
    members = {
        ns["metadata"]["name"]
        for ns in ctx.items("Namespace")
        if (ns["metadata"].get("labels") or {}).get("maistra.io/member-of") in meshes
    }
    for mesh in meshes:
        roll = ctx.get("ServiceMeshMemberRoll.maistra.io", "default", mesh)
        members.update(((roll or {}).get("spec") or {}).get("members") or [])
    return members


def _strict_ports(
    service: JsonObject, pods: list[JsonObject], policies: list[JsonObject]
) -> frozenset[int]:
    """The Service's ports that accept only mTLS in a STRICT mesh, after the namespace's
    PeerAuthentications (security.istio.io; istio/api security/v1beta1/peer_authentication.proto
    and Istio's precedence: a workload's policy (``selector``) over the namespace's (no
    selector) over the mesh's; ``portLevelMtls`` by the workload's port number, with a
    selector only; UNSET inherits)."""
    mode = "STRICT"  # the mesh's: SMCP security.dataPlane.mtls
    own = [p for p in policies if not ((p.get("spec") or {}).get("selector") or {})]
    for policy in sorted(own, key=_age):
        mode = _mode(policy.get("spec") or {}, mode)
    ports: dict[str, str] = {}
    labels = [(p["metadata"].get("labels") or {}) for p in pods]
    for policy in sorted(policies, key=_age):
        spec = policy.get("spec") or {}
        wanted = (spec.get("selector") or {}).get("matchLabels") or {}
        if (
            wanted
            and labels
            and all(_selected({"metadata": {"labels": own}}, wanted) for own in labels)
        ):
            mode = _mode(spec, mode)
            ports = {
                str(k): _mode(v or {}, mode) for k, v in (spec.get("portLevelMtls") or {}).items()
            }
            break  # the oldest matching workload policy applies (Istio's tie-break)
    strict = set()
    for port in (service.get("spec") or {}).get("ports") or []:
        target = _container_port(pods, port.get("targetPort", port.get("port")))
        if ports.get(str(target), mode) == "STRICT":
            strict.add(int(port["port"]))
    return frozenset(strict)


def _router_admitted(pods: list[JsonObject], policies: list[JsonObject]) -> bool:
    """Whether the namespace's NetworkPolicies let the router (its namespace's labels) connect
    to these pods: yes when no Ingress policy selects them, else when one of those that do has
    a rule whose sources include the router's namespace (networking.k8s.io/v1 semantics:
    policies add up; a rule without ``from`` admits every source)."""
    labels = [(p["metadata"].get("labels") or {}) for p in pods]

    def selects(policy: JsonObject) -> bool:
        spec = policy.get("spec") or {}
        if "Ingress" not in (spec.get("policyTypes") or ["Ingress"]):
            return False
        wanted = (spec.get("podSelector") or {}).get("matchLabels") or {}
        return all(all(own.get(k) == v for k, v in wanted.items()) for own in labels)

    def admits(peer: JsonObject) -> bool:
        if "namespaceSelector" not in peer or (peer.get("podSelector") or {}).get("matchLabels"):
            return False  # pods of the policy's own namespace, or an address block
        wanted = (peer.get("namespaceSelector") or {}).get("matchLabels") or {}
        return all(ROUTER_NAMESPACE_LABELS.get(k) == v for k, v in wanted.items())

    selecting = [p for p in policies if selects(p)]
    return not selecting or any(
        not rule.get("from") or any(admits(peer) for peer in rule["from"])
        for policy in selecting
        for rule in (policy.get("spec") or {}).get("ingress") or []
    )


def _mode(spec: JsonObject, inherited: str) -> str:
    mode = str(((spec.get("mtls") or spec) or {}).get("mode") or "UNSET")
    return inherited if mode == "UNSET" else mode


def _age(obj: JsonObject) -> tuple[str, str]:
    return (str(obj["metadata"].get("creationTimestamp") or ""), str(obj["metadata"]["name"]))


def _container_port(pods: list[JsonObject], target: object) -> object:
    """A named targetPort as the number a container of the pods declares."""
    if not isinstance(target, str):
        return target
    for pod in pods:
        for container in (pod.get("spec") or {}).get("containers") or []:
            for port in container.get("ports") or []:
                if port.get("name") == target:
                    return port.get("containerPort")
    return target


def _service_port(service: JsonObject, target: object) -> int:
    """The Service port a Route's ``port.targetPort`` names (its name, or its target port);
    without one, the first."""
    ports = (service.get("spec") or {}).get("ports") or [{"port": 80}]
    for port in ports:
        if target in (port.get("name"), port.get("targetPort"), port.get("port")):
            return int(port["port"])
    return int(ports[0]["port"])


def _selected(pod: JsonObject, selector: dict[str, str]) -> bool:
    labels = pod["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def _has_sidecar(pod: JsonObject) -> bool:
    spec = pod.get("spec") or {}
    names = [c.get("name") for c in (spec.get("containers") or [])]
    names += [c.get("name") for c in (spec.get("initContainers") or [])]
    return SIDECAR in names


def _read_head(client: socket.socket) -> tuple[bytes, bytes] | None:
    """The request head, and what was read past it (the start of a body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = client.recv(4096)
        except OSError:
            return None
        if not chunk or len(data) > MAX_HEADER_BYTES:
            return None
        data += chunk
    head, _, early = data.partition(b"\r\n\r\n")
    return head, early


def _pipe(client: socket.socket, upstream: socket.socket, started: float | None) -> None:
    """Copy both ways until the upstream has answered and closed. ``started``: mark the answer
    as Envoy's router marks one from an upstream (``x-envoy-upstream-service-time``)."""

    def forward() -> None:
        try:
            while chunk := client.recv(65536):
                upstream.sendall(chunk)
        except OSError:
            pass

    threading.Thread(target=forward, daemon=True).start()
    first = started is not None
    try:
        while chunk := upstream.recv(65536):
            if first and b"\r\n" in chunk and started is not None:
                line, _, rest = chunk.partition(b"\r\n")
                took = int((time.monotonic() - started) * 1000)
                chunk = line + f"\r\nx-envoy-upstream-service-time: {took}\r\n".encode() + rest
                first = False
            client.sendall(chunk)
    except OSError:
        pass


def _destination(
    client: socket.socket, decision: tuple[str, int] | None, name: str, port: int
) -> tuple[str, int] | None:
    """Where a call the gate decided on goes, or None once the caller has been answered: a
    reset (the mesh refuses it) or a 502 (the name does not resolve)."""
    if decision is None:
        _reset(client)
        return None
    if decision == UNRESOLVED:
        _answer(client, 502, f"dial tcp: lookup {name}: no such host")
        return None
    return decision if decision[1] else (name, port)


def _relay(client: ssl.SSLSocket, upstream: socket.socket) -> None:
    """Copy both ways on one thread (a TLS socket must not be read and written at once)."""
    while True:
        ready = [client] if client.pending() else select.select([client, upstream], [], [])[0]
        for source, sink in ((client, upstream), (upstream, client)):
            if source in ready:
                try:
                    chunk = source.recv(65536)
                except (ssl.SSLWantReadError, BlockingIOError):
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                sink.sendall(chunk)


def router_certificate(state_dir: Path) -> ssl.SSLContext | None:
    """The router's default certificate: ``*.<apps domain>``, signed by the cluster's CA (made
    once). OpenShift's is signed by the ingress operator's CA, which OpenShift adds to the
    bundle every pod's service account volume holds (``ca.crt``); the sandbox's cluster CA is
    that bundle, so a pod trusts both the same way."""
    authority = next(iter(sorted(state_dir.glob("kwok/clusters/*/pki/ca.key"))), None)
    if authority is None:
        return None
    folder = state_dir / "standins" / "router"
    cert, key = folder / "tls.crt", folder / "tls.key"
    if not (cert.exists() and key.exists()):
        folder.mkdir(parents=True, exist_ok=True)
        request, extensions = folder / "tls.csr", folder / "san.cnf"
        extensions.write_text(f"subjectAltName=DNS:*.{APPS_DOMAIN}\n")
        for argv in (
            ["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
             "-subj", f"/CN=*.{APPS_DOMAIN}", "-out", str(request)],
            ["openssl", "x509", "-req", "-in", str(request), "-CA",
             str(authority.with_suffix(".crt")), "-CAkey", str(authority), "-CAcreateserial",
             "-days", "365", "-extfile", str(extensions), "-out", str(cert)],
        ):  # fmt: skip
            subprocess.run(argv, check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def _answer(client: socket.socket, status: int, text: str, envoy: bool = False) -> None:
    """An answer of the gate's own: ``envoy``, a local reply of the mesh's proxy (so marked
    as Envoy marks one); otherwise what the network says (a name that does not resolve)."""
    body = text.encode()
    server = "server: istio-envoy\r\n" if envoy else ""
    client.sendall(
        f"HTTP/1.1 {status} Mesh Gate\r\n{server}Content-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )


def _reset(client: socket.socket) -> None:
    """Close with RST, as a sidecar resets a plaintext connection under STRICT mTLS."""
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()
