"""Why a pod has no mesh sidecar: the chain from the mesh to the pod, and the first broken link.

The links, in order: the namespace is a member of a mesh (ServiceMeshMember Ready, or listed
by a ServiceMeshMemberRoll); it carries ``istio.io/rev`` naming an existing control plane; the
pod asks for injection (``sidecar.istio.io/inject``); and, when it does not, who wrote its
template: a workload the team owns, or an operator whose custom resource decides the pod.
"""

from __future__ import annotations

from dataclasses import dataclass

from stagecheck.engine.outcome import Evidence
from stagecheck.engine.related import owner_chain
from stagecheck.errors import KubeApiError, UnknownKind
from stagecheck.kube.client import JsonObject, Kube
from stagecheck.kube.discovery import Discovery

SIDECAR = "istio-proxy"
INJECT_ANNOTATION = "sidecar.istio.io/inject"
REVISION_LABEL = "istio.io/rev"
BUILT_IN_GROUPS = frozenset({"", "apps", "batch"})


@dataclass(frozen=True)
class Diagnosis:
    cause: str
    evidence: list[Evidence]
    final: bool = False  # the workload is fully rolled out without it: waiting cannot help


def explain_missing_sidecar(kube: Kube, discovery: Discovery, pod: JsonObject) -> Diagnosis:
    namespace = pod["metadata"]["namespace"]
    ns = kube.get(f"/api/v1/namespaces/{namespace}")
    chain = owner_chain(kube, discovery, pod)
    evidence = [Evidence("owner chain", _describe_chain(chain))]
    membership = _membership(kube, discovery, namespace)
    if membership is not None and not membership[0]:
        return Diagnosis(
            f"namespace {namespace} is not a member of the mesh: {membership[1]}", evidence
        )
    revision = (ns["metadata"].get("labels") or {}).get(REVISION_LABEL)
    if revision is None:
        return Diagnosis(
            f"namespace {namespace} has no {REVISION_LABEL} label, so no control plane injects "
            "its pods",
            evidence,
        )
    missing_plane = _missing_control_plane(kube, discovery, revision)
    if missing_plane:
        return Diagnosis(
            f"namespace {namespace} is labelled {REVISION_LABEL}={revision}, but {missing_plane}",
            evidence,
        )
    annotation = (pod["metadata"].get("annotations") or {}).get(INJECT_ANNOTATION)
    if annotation == "true":
        return Diagnosis(
            f"the pod asks for injection ({INJECT_ANNOTATION}=true) in a member namespace "
            f"labelled {REVISION_LABEL}={revision}: look at the injector webhook of "
            f"control plane {revision}",
            evidence,
        )
    lacks = (
        f'lacks the {INJECT_ANNOTATION}: "true" annotation'
        if annotation is None
        else f'sets {INJECT_ANNOTATION}: "{annotation}"'
    )
    operator = _operator(chain)
    where = (
        f"its pods are created by the operator of {operator} "
        f"({' -> '.join(_name(o) for o in chain)}) and their template {lacks}; the "
        f"{operator.split()[0]} resource decides the pod, so change it (if its schema can "
        "carry pod annotations) or the operator"
        if operator
        else f"the pod template of {_name(chain[-1])} {lacks}"
    )
    return Diagnosis(
        f"the namespace is correctly labelled {REVISION_LABEL}={revision} and a mesh member, "
        f"but {where}",
        evidence,
        final=_rolled_out(chain),
    )


def _rolled_out(chain: list[JsonObject]) -> bool:
    """The pod's Deployment has finished rolling out: no new pod is coming."""
    deployment = next((o for o in chain if o.get("kind") == "Deployment"), None)
    if deployment is None:
        return False
    spec, status = deployment.get("spec", {}), deployment.get("status", {})
    current = status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
    template = spec.get("template", {})
    names = [c.get("name") for c in template.get("spec", {}).get("containers", [])]
    return (
        current
        and status.get("updatedReplicas", 0) == spec.get("replicas", 1)
        and SIDECAR not in names
    )


def _membership(kube: Kube, discovery: Discovery, namespace: str) -> tuple[bool, str] | None:
    """(member?, why not) from Maistra's resources; None where the cluster has no Maistra."""
    try:
        member_kind = discovery.resolve("ServiceMeshMember.maistra.io")
        roll_kind = discovery.resolve("ServiceMeshMemberRoll.maistra.io")
    except UnknownKind:
        return None
    members = kube.get(member_kind.collection_path(namespace)).get("items", [])
    for member in members:
        ready = next(
            (c for c in member.get("status", {}).get("conditions", []) if c.get("type") == "Ready"),
            None,
        )
        if ready and ready.get("status") == "True":
            return True, ""
    rolls = kube.get(roll_kind.collection_path(None)).get("items", [])
    if any(namespace in (r.get("status", {}).get("configuredMembers") or []) for r in rolls):
        return True, ""
    if members:
        return False, f"ServiceMeshMember {members[0]['metadata']['name']} is not Ready"
    return False, "no ServiceMeshMember in it, and no ServiceMeshMemberRoll lists it"


def _missing_control_plane(kube: Kube, discovery: Discovery, revision: str) -> str | None:
    try:
        kind = discovery.resolve("ServiceMeshControlPlane.maistra.io")
    except UnknownKind:
        return None
    planes = kube.get(kind.collection_path(None)).get("items", [])
    if any(p["metadata"]["name"] == revision for p in planes):
        return None
    names = ", ".join(p["metadata"]["name"] for p in planes) or "none"
    return f"no ServiceMeshControlPlane is named {revision} (control planes: {names})"


def _operator(chain: list[JsonObject]) -> str | None:
    """The custom resource at the top of the owner chain, if an operator owns the pod."""
    top = chain[-1]
    group = str(top.get("apiVersion", "")).rpartition("/")[0]
    if len(chain) > 1 and group not in BUILT_IN_GROUPS:
        return _name(top)
    return None


def _name(obj: JsonObject) -> str:
    return f"{obj.get('kind')} {obj.get('metadata', {}).get('name')}"


def _describe_chain(chain: list[JsonObject]) -> str:
    lines = []
    for depth, obj in enumerate(chain):
        annotations = obj.get("metadata", {}).get("annotations") or {}
        template = obj.get("spec", {}).get("template", {}).get("metadata", {})
        inject = annotations.get(INJECT_ANNOTATION) or (template.get("annotations") or {}).get(
            INJECT_ANNOTATION
        )
        note = f"  ({INJECT_ANNOTATION}={inject})" if inject else ""
        lines.append(f"{'  ' * depth}{obj.get('apiVersion', '')} {_name(obj)}{note}")
    return "\n".join(lines)


def safe_explain(kube: Kube, discovery: Discovery, pod: JsonObject) -> Diagnosis | None:
    try:
        return explain_missing_sidecar(kube, discovery, pod)
    except KubeApiError:
        return None
