"""The stand-in controllers' toolkit: what every controller needs, written once.

- ``Context``: the API client, discovery, and where the data plane's services answer (so a
  controller that calls a service, as its operator would, reaches the real process behind it).
- ``Controller``: a name and one level-triggered ``reconcile`` pass; optionally a server it runs
  (a webhook) between ``start`` and ``stop``.
- ``apply_owned``: create or update an object the controller owns (server-side apply under the
  controller's own field manager, with a controller owner reference), writing nothing when the
  object is already as wanted.
- ``conditions`` and ``write_status``: a status as an operator writes it, conditions keeping
  their ``lastTransitionTime`` while their status does not change.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from stagecheck.errors import Conflict, NotFound, UnknownKind
from stagecheck.kube.client import JsonObject, Kube
from stagecheck.kube.discovery import Discovery, ResourceType

# The Service in the world -> the data-plane service that answers for the pods behind it.
# (The port-forwards of stagecheck.sandbox.forwards map the same Services.)
ENDPOINTS_FILE = Path("dataplane") / "endpoints.json"
DISCOVERY_REFRESH_S = 0.25  # < runner.PASS_INTERVAL_S


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Context:
    """What a pass sees. ``writes`` counts the writes of the current pass (0: settled)."""

    kube: Kube
    discovery: Discovery
    state_dir: Path
    backends: Mapping[str, str]  # Service name in the world -> data-plane service name
    writes: int = 0
    _services: dict[str, str] = field(default_factory=dict)
    _services_mtime: float = -1.0
    _refreshed: float = -DISCOVERY_REFRESH_S

    def served(self, kind: str) -> ResourceType | None:
        """The kind (``Kind`` or ``Kind.group``) if the cluster serves it. CRDs come and go:
        a kind missing from the catalogue read so far makes it be read again, at most every
        ``DISCOVERY_REFRESH_S`` (shorter than a pass's pause, so a pass that begins after a
        CRD is served sees it: a settled pass must not have missed a new kind)."""
        found = self.discovery.match(kind)
        if found is not None or not self._may_refresh():
            return found
        try:
            return self.discovery.resolve(kind)  # re-reads the catalogue on a miss
        except UnknownKind:
            return None

    def _may_refresh(self) -> bool:
        if time.monotonic() - self._refreshed < DISCOVERY_REFRESH_S:
            return False
        self._refreshed = time.monotonic()
        return True

    def items(self, kind: str, namespace: str | None = None) -> list[JsonObject]:
        resource = self.served(kind)
        if resource is None:
            return []
        found = self.kube.get(resource.collection_path(namespace if resource.namespaced else None))
        return list(found.get("items") or [])

    def get(self, kind: str, name: str, namespace: str | None) -> JsonObject | None:
        resource = self.served(kind)
        if resource is None:
            return None
        return self.kube.get_or_none(resource.object_path(name, namespace))

    def service_url(self, service: str) -> str | None:
        """The loopback URL of the data-plane process answering for Service ``service`` of the
        world (None: no process stands behind it, or the data plane is not up)."""
        backend = self.backends.get(service)
        return self.data_plane_services().get(backend) if backend else None

    def in_cluster_url(self, url: str) -> str | None:
        """``http://<service>.<ns>.svc[.cluster.local]:<port>/path`` as the loopback URL that
        answers for it in the sandbox, path kept (what cluster DNS would resolve to)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ".svc" not in host:
            return None
        base = self.service_url(host.split(".")[0])
        if base is None:
            return None
        root = urlsplit(base)
        return f"{root.scheme}://{root.netloc}{parts.path}" + (
            f"?{parts.query}" if parts.query else ""
        )

    def data_plane_services(self) -> dict[str, str]:
        """The data plane's service URLs, re-read when its record changes."""
        path = self.state_dir / ENDPOINTS_FILE
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return {}
        if mtime != self._services_mtime:
            self._services = dict(json.loads(path.read_text()).get("services") or {})
            self._services_mtime = mtime
        return self._services


class Controller(Protocol):
    """One stand-in: ``name`` says so (e.g. ``llamastack-operator-standin``)."""

    name: str

    def reconcile(self, ctx: Context) -> None:
        """One pass over everything it owns; write only what differs."""

    def start(self, ctx: Context) -> None:
        """Start what it serves (a webhook); most controllers serve nothing."""

    def stop(self) -> None: ...


class Reconciler:
    """A base for controllers that serve nothing. ``problem``: why it cannot do its work, as
    long as that lasts (the runner records it as the controller's failure, so the sandbox's
    status names it)."""

    name = "standin"
    problem: str | None = None

    def reconcile(self, ctx: Context) -> None:
        raise NotImplementedError

    def start(self, ctx: Context) -> None:
        return None

    def stop(self) -> None:
        return None


def owner_reference(owner: JsonObject) -> JsonObject:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def apply_owned(
    ctx: Context, manager: str, owner: JsonObject | None, document: JsonObject
) -> JsonObject:
    """Create or update ``document`` as ``manager`` owns it (and ``owner`` controls it).
    Server-side apply leaves an unchanged object untouched (no new resourceVersion); a
    pass counts a write only when the object changed."""
    doc = json.loads(json.dumps(document))
    if owner is not None:
        doc["metadata"]["ownerReferences"] = [owner_reference(owner)]
    group = doc["apiVersion"].rpartition("/")[0]
    kind = f"{doc['kind']}.{group}" if group else doc["kind"]
    resource = ctx.served(kind)
    if resource is None:
        raise UnknownKind(f"{kind} is not served: cannot create {doc['metadata']['name']}")
    namespace = doc["metadata"].get("namespace") if resource.namespaced else None
    path = resource.object_path(doc["metadata"]["name"], namespace)
    before = ctx.kube.get_or_none(path)
    after = ctx.kube.apply(path, doc, field_manager=manager, force=True)  # as controllers do
    if before is None or before["metadata"].get("resourceVersion") != after["metadata"].get(
        "resourceVersion"
    ):
        ctx.writes += 1
    return after


def delete_owned(ctx: Context, kind: str, name: str, namespace: str | None) -> None:
    resource = ctx.served(kind)
    if resource is None:
        return
    if ctx.kube.delete(resource.object_path(name, namespace)) is not None:
        ctx.writes += 1


def condition(
    previous: Iterable[Mapping[str, Any]] | None,
    type_: str,
    status: str,
    reason: str = "",
    message: str = "",
) -> JsonObject:
    """A condition; its ``lastTransitionTime`` moves only when its status changes."""
    old = next((c for c in previous or () if c.get("type") == type_), None)
    since = old["lastTransitionTime"] if old and old.get("status") == status else now()
    made: JsonObject = {"type": type_, "status": status, "lastTransitionTime": since}
    if reason:
        made["reason"] = reason
    if message:
        made["message"] = message
    return made


def find_condition(obj: Mapping[str, Any] | None, type_: str) -> JsonObject | None:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == type_), None)


def write_status(ctx: Context, obj: JsonObject, status: JsonObject) -> bool:
    """Replace the object's status (as ``Status().Update`` does) when it differs. A conflict
    (someone wrote in between) is left to the next pass. Returns whether it wrote."""
    if _normal(obj.get("status") or {}) == _normal(status):
        return False
    group = obj["apiVersion"].rpartition("/")[0]
    resource = ctx.served(f"{obj['kind']}.{group}" if group else obj["kind"])
    if resource is None:
        return False
    namespace = obj["metadata"].get("namespace") if resource.namespaced else None
    body = {**obj, "status": status}
    try:
        ctx.kube.replace(resource.object_path(obj["metadata"]["name"], namespace) + "/status", body)
    except (Conflict, NotFound):
        return False
    ctx.writes += 1
    return True


def write_kubelet_status(ctx: Context, obj: JsonObject, status: JsonObject) -> None:
    """``write_status`` as a kubelet writes its Node's and its pods' (a list's pods carry no
    kind): blind to the nulls the API server adds (``lastProbeTime: null``), so an unchanged
    status writes nothing."""
    if _without_nulls(obj.get("status") or {}) != _without_nulls(status):
        write_status(ctx, {"apiVersion": "v1", "kind": "Pod", **obj}, status)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


KWOK_NODE = "kwok.x-k8s.io/node"  # the annotation of the nodes kwok runs (value "fake")


def kwok_pods(
    ctx: Context, service: JsonObject, nodes: Mapping[str, JsonObject]
) -> list[JsonObject]:
    """The pods the Service selects that run on a node kwok runs (``nodes``: by name, read
    once a pass): the world's pods, which run nothing themselves. Each carries its kind."""
    selector = (service.get("spec") or {}).get("selector") or {}
    if not selector:
        return []
    found = ctx.kube.get(
        f"/api/v1/namespaces/{service['metadata']['namespace']}/pods",
        params={"labelSelector": ",".join(f"{k}={v}" for k, v in sorted(selector.items()))},
    )
    pods = [{"apiVersion": "v1", "kind": "Pod", **p} for p in found.get("items") or []]
    return [p for p in pods if _kwok_runs(nodes.get(p["spec"].get("nodeName") or ""))]


def _kwok_runs(node: JsonObject | None) -> bool:
    annotations = ((node or {}).get("metadata") or {}).get("annotations") or {}
    return annotations.get(KWOK_NODE) == "fake"


def deployment_available(deployment: Mapping[str, Any] | None) -> JsonObject | None:
    """The Deployment's ``Available`` condition as its controller wrote it."""
    return find_condition(deployment, "Available")


def _normal(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True))
