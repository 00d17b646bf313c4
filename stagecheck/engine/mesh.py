"""Why a pod has no mesh sidecar: the chain from the mesh to the pod, and the first broken link,
judged by the rules of the Service Mesh the cluster serves.

Service Mesh 2.x (Maistra; ``maistra.io`` ServiceMeshControlPlane v2 served):

- the namespace is a member (ServiceMeshMember Ready, or listed in a ServiceMeshMemberRoll's
  ``configuredMembers``), and the member controller has labelled it
  ``maistra.io/member-of=<mesh namespace>`` (maistra/istio-operator maistra-2.5
  pkg/controller/servicemesh/member/namespace_reconciler.go);
- the injector webhook selects namespaces by that label, with ``maistra.io/ignore-namespace``
  and ``istio-env`` absent and ``istio-injection`` not ``disabled``; ``istio.io/rev`` selects
  nothing (resources/helm/v2.5/istio-control/istio-discovery/templates/mutatingwebhook.yaml);
- the pod: never with ``hostNetwork``; the label ``sidecar.istio.io/inject`` if present, else the
  annotation (the label wins); ``y``/``yes``/``true``/``on`` inject, any other value does not;
  none falls to the control plane's policy, ``spec.proxy.injection.autoInject`` (default false,
  resources/smcp-templates/v2.5/base; maistra/istio pkg/kube/inject/inject.go injectRequired).

Service Mesh 3.x (the Sail operator; ``sailoperator.io`` Istio served): the namespace is
selected by ``istio-injection=enabled`` or ``istio.io/rev=<revision>``, and its pods are
injected unless they opt out (the same inject label or annotation set to a false value).

When the pod does not ask, who wrote its template decides the advice: a workload the team owns,
or an operator whose custom resource decides the pod.

Whether a pod without the sidecar is refused by a Service (``plaintext_refused``) takes the whole
chain as evidence: a mesh control plane exists, the Service's namespace is in that mesh (by the
rules above, or the control plane's own), its pods carry ``istio-proxy`` (the destination's
sidecar enforces mTLS), and mTLS is required there. The PeerAuthentication closest to the
Service decides (one selecting its pods, then its namespace's, then the root namespace's; a mode
of ``UNSET`` defers upwards; istio security/authn policy_applier), and under 2.x a
ServiceMeshControlPlane's ``spec.security.dataPlane.mtls: true`` where none says.
"""

from __future__ import annotations

from dataclasses import dataclass

from stagecheck.engine.checks import container_names
from stagecheck.engine.outcome import Evidence
from stagecheck.engine.related import owner_chain
from stagecheck.errors import KubeApiError, UnknownKind
from stagecheck.kube.client import JsonObject, Kube
from stagecheck.kube.discovery import Discovery, ResourceType

SIDECAR = "istio-proxy"
INJECT = "sidecar.istio.io/inject"
MEMBER_OF = "maistra.io/member-of"
IGNORE_NAMESPACE = "maistra.io/ignore-namespace"
ISTIO_ENV = "istio-env"
ISTIO_INJECTION = "istio-injection"
REVISION_LABEL = "istio.io/rev"
YES = frozenset({"y", "yes", "true", "on"})
BUILT_IN_GROUPS = frozenset({"", "apps", "batch"})
RULES_2 = "Service Mesh 2.x rules (maistra.io ServiceMeshControlPlane v2 served)"
RULES_3 = "Service Mesh 3.x rules (sailoperator.io Istio served)"
PEER_AUTHENTICATION = "PeerAuthentication.security.istio.io"
DEFAULT_MESH_NAMESPACE = "istio-system"  # the Istio resource's spec.namespace default


@dataclass(frozen=True)
class Diagnosis:
    cause: str
    evidence: list[Evidence]
    final: bool = False  # the workload is fully rolled out without it: waiting cannot help


@dataclass(frozen=True)
class _Inject:
    """What the pod says about injection, as the injector reads it."""

    value: str | None  # None: neither label nor annotation
    source: str  # "label", "annotation" or ""

    @property
    def yes(self) -> bool:
        return self.value is not None and self.value.lower() in YES

    def describe(self) -> str:
        return f'{self.source} {INJECT}: "{self.value}"' if self.value is not None else ""


@dataclass(frozen=True)
class Refusal:
    """Whether the mesh resets a plaintext call (from a pod without ``istio-proxy``) to a
    Service, and the evidence: every link of the chain, or the first one missing."""

    refused: bool
    rules: str
    said: str


def explain_missing_sidecar(kube: Kube, discovery: Discovery, pod: JsonObject) -> Diagnosis:
    chain = owner_chain(kube, discovery, pod)
    evidence = [Evidence("owner chain", _describe_chain(chain))]
    generation = _generation(kube, discovery)
    if generation is not None and generation[0] == RULES_2:
        rules, cause, final = RULES_2, *_explain_2(kube, discovery, generation[1], pod, chain)
    elif generation is not None:
        rules, cause, final = RULES_3, *_explain_3(kube, discovery, generation[1], pod, chain)
    else:
        return Diagnosis(
            "the cluster serves neither maistra.io ServiceMeshControlPlane v2 (Service Mesh 2.x) "
            "nor sailoperator.io Istio (Service Mesh 3.x): no mesh operator is installed",
            evidence,
        )
    evidence.append(Evidence("mesh rules", rules))
    return Diagnosis(f"{rules}: {cause}", evidence, final=final)


def _generation(kube: Kube, discovery: Discovery) -> tuple[str, ResourceType] | None:
    """The mesh generation whose rules apply, with its control plane's kind; None: neither
    is served. Both served (a migration): 2.x unless only 3.x has a control plane."""
    smcp = _served(discovery, "ServiceMeshControlPlane.maistra.io", "v2")
    istio = _served(discovery, "Istio.sailoperator.io", None)
    if smcp is not None and (istio is None or _any(kube, smcp) or not _any(kube, istio)):
        return RULES_2, smcp
    if istio is not None:
        return RULES_3, istio
    return None


def served_rules(kube: Kube, discovery: Discovery) -> str | None:
    """The rules of the mesh generation the cluster serves; None: it serves neither."""
    generation = _generation(kube, discovery)
    return generation[0] if generation else None


def plaintext_refused(kube: Kube, discovery: Discovery, service: JsonObject) -> Refusal | None:
    """Whether the mesh resets a plaintext call to ``service``; None where the cluster serves
    no mesh (neither generation's control plane kind)."""
    generation = _generation(kube, discovery)
    if generation is None:
        return None
    rules, plane_kind = generation
    namespace = service["metadata"]["namespace"]
    name = f"Service {namespace}/{service['metadata']['name']}"
    if rules == RULES_2:
        found = _mesh_of_2(kube, discovery, plane_kind, namespace)
    else:
        found = _mesh_of_3(kube, plane_kind, namespace)
    if isinstance(found, str):
        return Refusal(False, rules, f"{name} is outside the mesh: {found}")
    plane, root, member = found
    in_mesh = f"{name} is in the mesh ({member}"
    pods = _service_pods(kube, service)
    meshed = [p for p in pods if SIDECAR in container_names(p)]
    if not meshed:
        return Refusal(
            False,
            rules,
            f"{in_mesh}), but "
            + (f"its pods have no {SIDECAR} sidecar, so they accept plaintext calls"
               if pods else f"it selects no pod that could carry {SIDECAR}"),
        )  # fmt: skip
    in_mesh += f"; its pods carry {SIDECAR})"
    mode = _peer_mode(kube, discovery, root, namespace, meshed[0])
    unset = "no PeerAuthentication requires mTLS, and the mesh's default is PERMISSIVE"
    if mode is None and rules == RULES_2:
        mtls = plane.get("spec", {}).get("security", {}).get("dataPlane", {}).get("mtls")
        said = f"{_plane_name(plane)} spec.security.dataPlane.mtls"
        if mtls is True:
            mode = ("STRICT", f"{said}: true")
        else:
            unset = f"no PeerAuthentication requires mTLS, and {said} is {_lower(mtls)}"
    if mode is None:
        return Refusal(False, rules, f"{in_mesh}, but {unset}")
    if mode[0] != "STRICT":
        return Refusal(False, rules, f"{in_mesh}, but {mode[1]} accepts plaintext")
    return Refusal(True, rules, f"{in_mesh} and requires mTLS ({mode[1]})")


def _mesh_of_2(
    kube: Kube, discovery: Discovery, smcp: ResourceType, namespace: str
) -> tuple[JsonObject, str, str] | str:
    """(control plane, root namespace, how the namespace belongs), or why it is outside."""
    own = kube.get(smcp.collection_path(namespace)).get("items", [])
    if own:
        return own[0], namespace, f"the namespace of {_plane_name(own[0])}"
    member, why_not, mesh_namespace = _membership(kube, discovery, namespace)
    if not member:
        return f"namespace {namespace} is not a member of a mesh: {why_not}"
    mesh_namespace = mesh_namespace or _namespace_labels(kube, namespace).get(MEMBER_OF)
    planes = []
    if mesh_namespace:
        planes = kube.get(smcp.collection_path(mesh_namespace)).get("items", [])
    if not mesh_namespace or not planes:
        return (
            f"namespace {namespace} is a mesh member, but no ServiceMeshControlPlane exists in "
            f"{mesh_namespace or 'its mesh namespace'}"
        )
    return planes[0], mesh_namespace, f"namespace {namespace} a member of {_plane_name(planes[0])}"


def _mesh_of_3(
    kube: Kube, istio: ResourceType, namespace: str
) -> tuple[JsonObject, str, str] | str:
    planes = kube.get(istio.collection_path(None)).get("items", [])
    if not planes:
        return "no sailoperator.io Istio control plane exists"
    labels = _namespace_labels(kube, namespace)
    revision = labels.get(REVISION_LABEL)
    plane = next((p for p in planes if p["metadata"]["name"] == revision), planes[0])
    spec = plane.get("spec", {})
    home = spec.get("namespace") or DEFAULT_MESH_NAMESPACE
    root = ((spec.get("values") or {}).get("meshConfig") or {}).get("rootNamespace") or home
    if namespace == home:
        return plane, root, f"the namespace of {_plane_name(plane)}"
    if labels.get(ISTIO_INJECTION) == "enabled":
        return plane, root, f"namespace {namespace} labelled {ISTIO_INJECTION}=enabled"
    if revision is not None:
        return plane, root, f"namespace {namespace} labelled {REVISION_LABEL}={revision}"
    return f"namespace {namespace} has neither {ISTIO_INJECTION}=enabled nor {REVISION_LABEL}"


def _peer_mode(
    kube: Kube, discovery: Discovery, root: str, namespace: str, pod: JsonObject
) -> tuple[str, str] | None:
    """(mode, which PeerAuthentication says it) of the policy closest to the pod, or None."""
    kind = discovery.match(PEER_AUTHENTICATION)
    if kind is None:
        return None
    local = kube.get(kind.collection_path(namespace)).get("items", [])
    labels = pod.get("metadata", {}).get("labels") or {}

    def selects(policy: JsonObject) -> bool:
        wanted = (policy.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
        return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())

    def wide(policy: JsonObject) -> bool:
        return not (policy.get("spec", {}).get("selector") or {}).get("matchLabels")

    meshwide = kube.get(kind.collection_path(root)).get("items", []) if root != namespace else []
    for policy in [
        *[p for p in local if selects(p)],
        *[p for p in local if wide(p)],
        *[p for p in meshwide if wide(p)],
    ]:
        mode = str((policy.get("spec", {}).get("mtls") or {}).get("mode") or "UNSET").upper()
        if mode != "UNSET":
            meta = policy["metadata"]
            return mode, f"PeerAuthentication {meta['namespace']}/{meta['name']} mtls.mode {mode}"
    return None


def _service_pods(kube: Kube, service: JsonObject) -> list[JsonObject]:
    selector = service.get("spec", {}).get("selector") or {}
    if not selector:
        return []
    query = {"labelSelector": ",".join(f"{k}={v}" for k, v in sorted(selector.items()))}
    namespace = service["metadata"]["namespace"]
    return list(kube.get(f"/api/v1/namespaces/{namespace}/pods", query).get("items", []))


def _plane_name(plane: JsonObject) -> str:
    meta = plane["metadata"]
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{plane.get('kind')} {where}{meta['name']}"


def _lower(value: object) -> str:
    return "unset" if value is None else str(value).lower()


# -- Service Mesh 2.x ------------------------------------------------------------------------
def _explain_2(
    kube: Kube, discovery: Discovery, smcp: ResourceType, pod: JsonObject, chain: list[JsonObject]
) -> tuple[str, bool]:
    namespace = pod["metadata"]["namespace"]
    labels = _namespace_labels(kube, namespace)
    member, why_not, mesh_namespace = _membership(kube, discovery, namespace)
    if not member:
        return f"namespace {namespace} is not a member of the mesh: {why_not}", False
    member_of = labels.get(MEMBER_OF)
    if member_of is None:
        return (
            f"namespace {namespace} is a mesh member but has no {MEMBER_OF} label, and the "
            f"injector's webhook selects namespaces by {MEMBER_OF}="
            f"{mesh_namespace or '<mesh namespace>'} (the member controller writes it: is the "
            "Service Mesh operator running, or did the namespace belong to another mesh?)"
            + (f"; its {REVISION_LABEL} label selects nothing under 2.x"
               if REVISION_LABEL in labels else "")
        ), False  # fmt: skip
    if mesh_namespace and member_of != mesh_namespace:
        return (
            f"namespace {namespace} is labelled {MEMBER_OF}={member_of}, but its mesh's control "
            f"plane is in {mesh_namespace}"
        ), False
    excluded = _excluded_2(labels)
    if excluded:
        return f"namespace {namespace} is labelled {excluded}, so the injector skips it", False
    planes = kube.get(smcp.collection_path(member_of)).get("items", [])
    if not planes:
        return (
            f"namespace {namespace} is labelled {MEMBER_OF}={member_of}, but no "
            f"ServiceMeshControlPlane exists in {member_of}"
        ), False
    plane = planes[0]
    plane_name = f"ServiceMeshControlPlane {member_of}/{plane['metadata']['name']}"
    selected = f"namespace {namespace} is a mesh member labelled {MEMBER_OF}={member_of}"
    if pod.get("spec", {}).get("hostNetwork"):
        return f"{selected}, but the pod uses hostNetwork, which is never injected", False
    inject = _inject(pod)
    webhook = f"istiod-{plane['metadata']['name']}-{member_of}"
    if inject.yes:
        return (
            f"{selected} and the pod asks for injection ({inject.describe()}): look at the "
            f"injector webhook {webhook} and the istiod pods of {plane_name}"
        ), False
    auto = _auto_inject(plane)
    if inject.value is None and auto[0]:
        return (
            f"{selected} and {plane_name} injects every pod (spec.proxy.injection.autoInject="
            f"{auto[1]}): look at the injector webhook {webhook}"
        ), False
    lacks = (
        f'lacks {INJECT}: "true" (as a label or an annotation)'
        if inject.value is None
        else f"sets {inject.describe()}, which does not ask for injection"
    )
    policy = (
        f"{plane_name} has spec.proxy.injection.autoInject={auto[1]}, so only pods that ask "
        "are injected"
    )
    return f"{selected}, but {_who_decides(chain, lacks, policy)}", _rolled_out(chain)


def _excluded_2(labels: dict[str, str]) -> str | None:
    if IGNORE_NAMESPACE in labels:
        return f"{IGNORE_NAMESPACE}={labels[IGNORE_NAMESPACE]}"
    if labels.get(ISTIO_INJECTION) == "disabled":
        return f"{ISTIO_INJECTION}=disabled"
    if ISTIO_ENV in labels:
        return f"{ISTIO_ENV}={labels[ISTIO_ENV]}"
    return None


def _auto_inject(plane: JsonObject) -> tuple[bool, str]:
    """(injects by default?, how the value reads): autoInject, false when unset."""
    injection = plane.get("spec", {}).get("proxy", {}).get("injection", {})
    value = injection.get("autoInject")
    if value is None:
        return False, "false (unset; the default)"
    return value is True or str(value).lower() == "true", str(value).lower()


def _membership(kube: Kube, discovery: Discovery, namespace: str) -> tuple[bool, str, str | None]:
    """(member?, why not, the mesh's namespace) from Maistra's member resources."""
    try:
        member_kind = discovery.resolve("ServiceMeshMember.maistra.io")
        roll_kind = discovery.resolve("ServiceMeshMemberRoll.maistra.io")
    except UnknownKind:
        return False, "the cluster serves no ServiceMeshMember or ServiceMeshMemberRoll", None
    members = kube.get(member_kind.collection_path(namespace)).get("items", [])
    rolls = kube.get(roll_kind.collection_path(None)).get("items", [])
    listing = [
        r for r in rolls if namespace in (r.get("status", {}).get("configuredMembers") or [])
    ]
    for member in members:
        ready = next(
            (c for c in member.get("status", {}).get("conditions", []) if c.get("type") == "Ready"),
            None,
        )
        if ready and ready.get("status") == "True":
            ref = member.get("spec", {}).get("controlPlaneRef", {})
            return True, "", ref.get("namespace")
    if listing:
        return True, "", listing[0]["metadata"]["namespace"]
    if members:
        return False, f"ServiceMeshMember {members[0]['metadata']['name']} is not Ready", None
    return False, "no ServiceMeshMember in it, and no ServiceMeshMemberRoll lists it", None


# -- Service Mesh 3.x ------------------------------------------------------------------------
def _explain_3(
    kube: Kube, discovery: Discovery, istio: ResourceType, pod: JsonObject, chain: list[JsonObject]
) -> tuple[str, bool]:
    namespace = pod["metadata"]["namespace"]
    labels = _namespace_labels(kube, namespace)
    injection, revision = labels.get(ISTIO_INJECTION), labels.get(REVISION_LABEL)
    if injection != "enabled" and revision is None:
        return (
            f"namespace {namespace} has neither {ISTIO_INJECTION}=enabled nor {REVISION_LABEL}, "
            "so no control plane injects its pods"
            + (f"; its {MEMBER_OF} label selects nothing under 3.x"
               if MEMBER_OF in labels else "")
        ), False  # fmt: skip
    selector = f"{ISTIO_INJECTION}=enabled" if injection == "enabled" else f"{REVISION_LABEL}="
    selector += "" if injection == "enabled" else str(revision)
    if revision is not None and injection != "enabled":
        known = _revisions(kube, discovery, istio)
        if known and revision not in known:
            return (
                f"namespace {namespace} is labelled {REVISION_LABEL}={revision}, but no control "
                f"plane revision is named {revision} (revisions: {', '.join(sorted(known))})"
            ), False
    selected = f"namespace {namespace} is labelled {selector}"
    if pod.get("spec", {}).get("hostNetwork"):
        return f"{selected}, but the pod uses hostNetwork, which is never injected", False
    inject = _inject(pod)
    if inject.value is not None and not inject.yes:
        return (
            f"{selected}, but "
            + _who_decides(chain, f"opts out with {inject.describe()}", None)
        ), _rolled_out(chain)  # fmt: skip
    return (
        f"{selected} and its pods are injected unless they opt out: look at the injector "
        "webhook and istiod of that revision (a pod created before the label needs a restart)"
    ), False


def _revisions(kube: Kube, discovery: Discovery, istio: ResourceType) -> set[str]:
    """Revision names: IstioRevision objects where served, else the Istio objects' names."""
    kind = discovery.match("IstioRevision.sailoperator.io") or istio  # optional: no refresh
    return {o["metadata"]["name"] for o in kube.get(kind.collection_path(None)).get("items", [])}


# -- shared ----------------------------------------------------------------------------------
def _who_decides(chain: list[JsonObject], lacks: str, policy: str | None) -> str:
    operator = _operator(chain)
    because = f"; {policy}" if policy else ""
    if operator:
        fix = "set autoInject: true on the control plane, " if policy else ""
        return (
            f"its pods are created by the operator of {operator} "
            f"({' -> '.join(_name(o) for o in chain)}) and their template {lacks}{because}; the "
            f"{operator.split()[0]} resource decides the pod, so change it (if its schema can "
            f"carry pod annotations), {fix}or change the operator"
        )
    return f"the pod template of {_name(chain[-1])} {lacks}{because}"


def _inject(pod: JsonObject) -> _Inject:
    metadata = pod.get("metadata", {})
    labels, annotations = metadata.get("labels") or {}, metadata.get("annotations") or {}
    if INJECT in labels:  # the label wins over the annotation
        return _Inject(str(labels[INJECT]), "label")
    if INJECT in annotations:
        return _Inject(str(annotations[INJECT]), "annotation")
    return _Inject(None, "")


def _served(discovery: Discovery, kind: str, version: str | None) -> ResourceType | None:
    """The kind, where the catalogue already read serves it: probing for a mesh's optional
    kinds does not re-read discovery on each miss (two requests a probe)."""
    found = discovery.match(kind)
    if found is None:
        return None
    if version is None or found.version == version:
        return found
    same = [
        t
        for t in discovery.types()
        if t.group == found.group and t.kind == found.kind and t.version == version
    ]
    return same[0] if same else None


def _any(kube: Kube, resource: ResourceType) -> bool:
    """Whether any object of the kind exists; a kind the reader may not list counts as none."""
    try:
        return bool(kube.get(resource.collection_path(None), {"limit": "1"}).get("items"))
    except KubeApiError:
        return False


def _namespace_labels(kube: Kube, namespace: str) -> dict[str, str]:
    ns = kube.get(f"/api/v1/namespaces/{namespace}")
    return dict(ns["metadata"].get("labels") or {})


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
        template = obj.get("spec", {}).get("template", {})
        inject = _inject(obj).value or _inject(template).value
        note = f"  ({INJECT}={inject})" if inject else ""
        lines.append(f"{'  ' * depth}{obj.get('apiVersion', '')} {_name(obj)}{note}")
    return "\n".join(lines)


def safe_explain(kube: Kube, discovery: Discovery, pod: JsonObject) -> Diagnosis | None:
    """The diagnosis, or, when the API refuses a read it needs, a cause saying so: a red step
    never loses its explanation silently."""
    try:
        return explain_missing_sidecar(kube, discovery, pod)
    except KubeApiError as error:
        return Diagnosis(
            f"the mesh diagnosis could not read what it needs ({error}): grant the run "
            "read access to the mesh's objects to have the cause named",
            [],
        )
