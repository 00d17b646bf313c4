"""Relations between objects: the pods that belong to a workload or custom resource, and the
owner chain from a pod up to whatever created it (Pod -> ReplicaSet -> Deployment -> CR)."""

from __future__ import annotations

from stagecheck.errors import KubeApiError, UnknownKind
from stagecheck.kube.client import JsonObject, Kube
from stagecheck.kube.discovery import Discovery

SELECTOR_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})
MAX_OWNER_DEPTH = 5


def selector_string(obj: JsonObject) -> str | None:
    """``spec.selector.matchLabels`` as a label selector, for workloads that have one."""
    labels = (obj.get("spec", {}).get("selector") or {}).get("matchLabels")
    if not isinstance(labels, dict) or not labels:
        return None
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def owner_chain(
    kube: Kube,
    discovery: Discovery,
    obj: JsonObject,
    owners: dict[str, JsonObject | None] | None = None,
) -> list[JsonObject]:
    """``obj`` followed by its controller owner, that owner's, and so on up to the top.

    ``owners`` (by owner uid) is shared by the calls for many pods of one workload, so their
    ReplicaSet and Deployment are read once, not once per pod."""
    owners = {} if owners is None else owners
    chain = [obj]
    namespace = obj.get("metadata", {}).get("namespace")
    while len(chain) <= MAX_OWNER_DEPTH:
        refs = chain[-1].get("metadata", {}).get("ownerReferences") or []
        ref = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
        if ref is None:
            break
        key = str(ref.get("uid") or f"{ref.get('kind')}/{namespace}/{ref.get('name')}")
        if key not in owners:
            owners[key] = _owner(kube, discovery, ref, namespace)
        owner = owners[key]
        if owner is None:
            chain.append({"kind": ref.get("kind"), "metadata": {"name": ref.get("name")}})
            break
        chain.append(owner)
    return chain


def _owner(
    kube: Kube, discovery: Discovery, ref: JsonObject, namespace: str | None
) -> JsonObject | None:
    try:
        group = ref.get("apiVersion", "").rpartition("/")[0]
        resource = discovery.resolve(f"{ref['kind']}.{group}" if group else ref["kind"])
        return kube.get_or_none(resource.object_path(ref["name"], namespace))
    except (UnknownKind, KubeApiError):
        return None


def related_pods(kube: Kube, discovery: Discovery, obj: JsonObject) -> list[JsonObject]:
    """Pods that belong to ``obj``: by its selector for workloads, by owner chain otherwise."""
    meta = obj.get("metadata", {})
    namespace = meta.get("namespace")
    if obj.get("kind") == "Pod":
        return [obj]
    if not namespace:
        return []
    if obj.get("kind") in SELECTOR_KINDS and (selector := selector_string(obj)):
        listing = kube.get(f"/api/v1/namespaces/{namespace}/pods", {"labelSelector": selector})
        return list(listing.get("items", []))
    uid = meta.get("uid")
    pods = kube.get(f"/api/v1/namespaces/{namespace}/pods").get("items", [])
    owners: dict[str, JsonObject | None] = {}
    return [p for p in pods if uid in _owner_uids(kube, discovery, p, owners)]


def _owner_uids(
    kube: Kube, discovery: Discovery, pod: JsonObject, owners: dict[str, JsonObject | None]
) -> set[str]:
    return {
        str(o.get("metadata", {}).get("uid"))
        for o in owner_chain(kube, discovery, pod, owners)[1:]
        if o.get("metadata", {}).get("uid")
    }
