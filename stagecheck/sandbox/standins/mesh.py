"""Stand-ins for OpenShift Service Mesh 2.5's operator (maistra/istio-operator): NOT Maistra.

Sources: maistra/istio-operator@maistra-2.5 (8143614), abbreviated MO below.

Who owns ``data-science-smcp``: RHOAI's DSCInitialization creates it from
opendatahub-io/opendatahub-operator's ``create-smcp.tmpl.yaml`` (the same file in RHOAI 2.25 and
ODH v2.35.0), which carries ``opendatahub.io/managed: "false"`` and no ``spec.proxy.injection``:
the operator creates the control plane only when it is missing, never patches it afterwards and
sets no owner reference. So ``autoInject`` starts at Maistra's default (false) and a user's
``autoInject: true`` is kept, never reverted. With it, every pod created in a member namespace
that does not opt out (``sidecar.istio.io/inject: "false"``) is injected: the stage's Milvus,
Docling, pipelines and MariaDB too, so under STRICT mTLS a caller from outside the mesh (a
nightly Job without a sidecar) reaches none of them. The healthy world is built on that.

``ServiceMeshControlPlaneStandin`` (maistra.io/v2 ServiceMeshControlPlane, revision = its name,
MO pkg/controller/versions/strategy_v2_5.go):
- Renders the injector part of istio-discovery (MO resources/helm/v2.5/istio-control/
  istio-discovery/templates/): Deployment and Service ``istiod-<rev>`` in the mesh namespace
  (labels ``app=istiod``, ``istio.io/rev``, ``maistra.io/owner``, ``app.kubernetes.io/component=
  istiod``; kwok runs its pods); ConfigMap ``istio-sidecar-injector-<rev>`` whose ``config`` holds
  ``policy: enabled|disabled`` from ``spec.proxy.injection.autoInject`` (default false: MO
  resources/smcp-templates/v2.5/base; mapping: pkg/apis/maistra/conversion/proxy.go); the
  MutatingWebhookConfiguration ``istiod-<rev>-<meshNs>`` (mutatingwebhook.yaml): webhook
  ``sidecar-injector.istio.io``, pod CREATE, ``failurePolicy: Fail``, ``sideEffects: None``,
  namespaceSelector ``maistra.io/member-of In [meshNs]``, ``maistra.io/ignore-namespace
  DoesNotExist``, ``istio-injection NotIn [disabled]``, ``istio-env DoesNotExist``;
  objectSelector ``app NotIn [istiod]`` (the inject-label clause only with
  ``techPreview.sidecarInjectorWebhook.objectSelector.enabled``, off by default).
- Status (controlplane/status.go ``updateConditions``, readiness.go): on the first successful
  reconcile Installed and Reconciled True/``InstallSuccessful``/"Successfully installed all
  mesh components"; a later reconcile (a new generation) Reconciled True/
  ``ReconcileSuccessful``/"Successfully reconciled"; an error InstallError (before install) or
  ReconcileError. Ready copies Reconciled while that is not True, else False/
  ``ComponentsNotReady``/"The following components are not fully available: [..]" or True/
  ``ComponentsReady``/"All component deployments are Available"; a component (label
  ``app.kubernetes.io/component`` on a Deployment labelled ``maistra.io/owner=<meshNs>``) is
  ready when readyReplicas >= replicas, observedGeneration >= generation and Available=True.
  ``readiness.components{ready,unready,pending}``, ``annotations.readyComponentCount`` "R/N",
  ``observedGeneration``, ``operatorVersion``, ``chartVersion``, ``components[]``.

``ServiceMeshMemberRollStandin`` (MO pkg/controller/servicemesh/memberroll/controller.go): for
the roll ``default`` creates ServiceMeshMember ``default`` (annotation ``maistra.io/created-by:
servicemeshmemberroll-controller``) in each ``spec.members`` namespace that exists (``*`` and
``memberSelectors`` ``matchLabels`` too), deletes the ones it created that left the list; status
``members``, ``configuredMembers`` (member Reconciled=True for this mesh), ``pendingMembers``
(not at the mesh's reconciled version ``<operatorVersion>-<observedGeneration>``),
``terminatingMembers``, ``memberStatuses``, ``meshGeneration``, ``meshReconciledVersion``,
``annotations.configuredMemberCount`` "C/M", ``observedGeneration``; Ready False/
``ErrSMCPMissing``, ``ErrMultipleSMCPs``, ``ErrInvalidName``, ``ReconcileError`` ("The following
namespaces are not yet configured: [..]") or True/``Configured``.

``ServiceMeshMemberStandin`` (MO pkg/controller/servicemesh/member/controller.go,
namespace_reconciler.go): finalizer ``maistra.io/istio-operator``; labels the Namespace
``maistra.io/member-of=<meshNs>`` (refused with ``ErrorConfiguringNamespace`` when it is a
member of another mesh) and adds it again when removed; creates the roll ``default`` if it is
missing; on success Reconciled and Ready True with no reason and no message; a missing control
plane: both False/``ErrorControlPlaneMissing``/"the referenced ServiceMeshControlPlane object
does not exist"; a member deleted: the label is removed, then the finalizer.

Where they knowingly differ: only the injector's objects of istio-discovery are rendered (no
gateways, Prometheus, Kiali, no NetworkPolicies, RoleBindings or NetworkAttachmentDefinitions
in members); only ``v2.5`` is a supported ``spec.version`` (the operator's validating webhook
would refuse others at admission; here Reconciled turns False); no validating webhook at all;
cluster-wide mode and ``memberSelectors`` ``matchExpressions`` are not implemented.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import yaml

from stagecheck.errors import NotFound
from stagecheck.kube.client import JsonObject
from stagecheck.sandbox.standins.base import (
    Context,
    Reconciler,
    apply_owned,
    condition,
    find_condition,
    write_status,
)
from stagecheck.sandbox.standins.mesh_injector import (
    INJECTOR_CONFIGMAP,
    MAISTRA_VERSION,
    SidecarInjectorStandin,
)
from stagecheck.sandbox.standins.routes import ROUTER_POLICY_GROUP

SMCP = "ServiceMeshControlPlane.maistra.io"
SMMR = "ServiceMeshMemberRoll.maistra.io"
SMM = "ServiceMeshMember.maistra.io"
MANAGER = "istio-operator-standin"
MEMBER_OF = "maistra.io/member-of"
OWNER = "maistra.io/owner"
CREATED_BY = "maistra.io/created-by"
COMPONENT = "app.kubernetes.io/component"
FINALIZER = "maistra.io/istio-operator"
DEFAULT_NAME = "default"  # common.MemberRollName, common.MemberName
SUPPORTED_VERSIONS = ("v2.5",)
DEFAULT_VERSION = "v2.5"  # versions.DefaultVersion: the newest this operator knows
OPERATOR_VERSION = MAISTRA_VERSION
ROLL_CONTROLLER = "servicemeshmemberroll-controller"
MEMBER_CONTROLLER = "servicemeshmember-controller"
EXCLUDED_PREFIXES = ("kube-", "openshift-", "ibm-")  # memberroll getExcludedNamespaces
EXCLUDED = ("kube", "openshift")
ISTIOD_IMAGE = f"registry.redhat.io/openshift-service-mesh/pilot-rhel8:{MAISTRA_VERSION}"


def reconciled_version(smcp: JsonObject | None) -> str:
    """v2 ControlPlaneStatus.GetReconciledVersion: ``<operatorVersion>-<observedGeneration>``."""
    status = (smcp or {}).get("status") or {}
    return (
        f"{status.get('operatorVersion') or '0.0.0'}-{int(status.get('observedGeneration') or 0)}"
    )


def _auto_inject(smcp: JsonObject) -> bool:
    injection = (((smcp.get("spec") or {}).get("proxy") or {}).get("injection")) or {}
    return injection.get("autoInject") is True


class ServiceMeshControlPlaneStandin(Reconciler):
    name = "servicemesh-controlplane-standin"

    def __init__(self, injector: SidecarInjectorStandin) -> None:
        self.injector = injector

    def reconcile(self, ctx: Context) -> None:
        if ctx.served(SMCP) is None:
            return
        meshes = ctx.items(SMCP)
        kept = {(m["metadata"]["namespace"], m["metadata"]["name"]) for m in meshes}
        for smcp in meshes:
            self._reconcile_one(ctx, smcp)
        self._remove_orphans(ctx, kept)

    def _reconcile_one(self, ctx: Context, smcp: JsonObject) -> None:
        meta = smcp["metadata"]
        generation = int(meta.get("generation") or 1)
        status: JsonObject = json.loads(json.dumps(smcp.get("status") or {}))
        conditions = status.get("conditions") or []
        installed = find_condition(smcp, "Installed")
        reconciled = find_condition(smcp, "Reconciled")
        fresh = (
            status.get("observedGeneration") == generation
            and reconciled is not None
            and reconciled.get("status") == "True"
        )
        # The operator re-renders on every event; its conditions change only when it
        # reconciles a new generation (or fails).
        error = self._install(ctx, smcp)
        was_installed = installed is not None and installed.get("status") == "True"
        if error is None and not was_installed:
            message = "Successfully installed all mesh components"
            installed = condition(conditions, "Installed", "True", "InstallSuccessful", message)
            reconciled = condition(conditions, "Reconciled", "True", "InstallSuccessful", message)
        elif error is None and not fresh:
            reconciled = condition(
                conditions, "Reconciled", "True", "ReconcileSuccessful", "Successfully reconciled"
            )
        elif error is not None and installed is None:  # Installed Unknown: never installed
            installed = condition(conditions, "Installed", "False", "InstallError", error)
            reconciled = condition(conditions, "Reconciled", "False", "InstallError", error)
        elif error is not None:
            reconciled = condition(conditions, "Reconciled", "False", "ReconcileError", error)
        if error is None and not fresh:
            status["observedGeneration"] = generation
            status["operatorVersion"] = OPERATOR_VERSION
            status["chartVersion"] = MAISTRA_VERSION
            status["components"] = [
                {
                    "resource": "istiod",
                    "conditions": [
                        condition(
                            _component_conditions(status),
                            t,
                            "True",
                            "InstallSuccessful",
                            "Component installed successfully",
                        )
                        for t in ("Installed", "Reconciled")
                    ],
                }
            ]
        assert reconciled is not None
        ready = self._readiness(ctx, smcp, status, reconciled, conditions)
        status["conditions"] = [c for c in (installed, reconciled, ready) if c is not None]
        write_status(ctx, smcp, status)

    def _install(self, ctx: Context, smcp: JsonObject) -> str | None:
        """Render and apply the injector's objects; returns the error's message, if any."""
        version = (smcp.get("spec") or {}).get("version") or DEFAULT_VERSION
        if version not in SUPPORTED_VERSIONS:
            renders = ", ".join(SUPPORTED_VERSIONS)
            return f"invalid version: {version} (this stand-in renders {renders})"
        meta = smcp["metadata"]
        mesh, rev = meta["namespace"], meta["name"]
        labels = {
            "app": "istiod",
            "istio.io/rev": rev,
            OWNER: mesh,
            COMPONENT: "istiod",
            "maistra-version": MAISTRA_VERSION,
        }
        pod_labels = {"app": "istiod", "istio.io/rev": rev, "istio": "pilot"}
        apply_owned(
            ctx,
            MANAGER,
            smcp,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": f"istiod-{rev}", "namespace": mesh, "labels": labels},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": pod_labels},
                    "template": {
                        "metadata": {
                            "labels": pod_labels,
                            "annotations": {"sidecar.istio.io/inject": "false"},
                        },
                        "spec": {
                            "containers": [
                                {
                                    "name": "discovery",
                                    "image": ISTIOD_IMAGE,
                                    "ports": [
                                        {"containerPort": 8080},
                                        {"containerPort": 15010},
                                        {"containerPort": 15017},
                                    ],
                                    "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
                                }
                            ]
                        },
                    },
                },
            },
        )
        apply_owned(
            ctx,
            MANAGER,
            smcp,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": f"istiod-{rev}", "namespace": mesh, "labels": labels},
                "spec": {
                    "selector": pod_labels,
                    "ports": [
                        {"name": "grpc-xds", "port": 15010, "targetPort": 15010},
                        {"name": "https-dns", "port": 15012, "targetPort": 15012},
                        {"name": "https-webhook", "port": 443, "targetPort": 15017},
                    ],
                },
            },
        )
        policy = "enabled" if _auto_inject(smcp) else "disabled"
        config = {
            "defaultTemplates": ["sidecar"],
            "policy": policy,
            "alwaysInjectSelector": [],
            "neverInjectSelector": [],
            "injectedAnnotations": {},
        }
        values = {
            "global": {"proxy": {"autoInject": policy}},
            "revision": rev,
            "istio_cni": {"enabled": True, "istio_cni_network": "v2-5-istio-cni"},
        }
        apply_owned(
            ctx,
            MANAGER,
            smcp,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": INJECTOR_CONFIGMAP.format(rev=rev),
                    "namespace": mesh,
                    "labels": {
                        "istio.io/rev": rev,
                        OWNER: mesh,
                        COMPONENT: "istiod",
                        "maistra-version": MAISTRA_VERSION,
                    },
                },
                "data": {
                    "config": yaml.safe_dump(config, sort_keys=False),
                    "values": json.dumps(values, indent=2),
                },
            },
        )
        # Cluster-scoped: no owner reference to the namespaced control plane (the garbage
        # collector would call it unresolvable); the owner label says whose it is.
        apply_owned(
            ctx,
            MANAGER,
            None,
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "MutatingWebhookConfiguration",
                "metadata": {
                    "name": f"istiod-{rev}-{mesh}",
                    "labels": {
                        "maistra-version": MAISTRA_VERSION,
                        "istio.io/rev": rev,
                        "app": "sidecar-injector",
                        OWNER: mesh,
                        "maistra.io/owner-name": rev,
                    },
                },
                "webhooks": [
                    {
                        "name": "sidecar-injector.istio.io",
                        "clientConfig": {
                            "url": self.injector.url(mesh, rev),
                            "caBundle": self.injector.ca_bundle,
                        },
                        "sideEffects": "None",
                        "rules": [
                            {
                                "operations": ["CREATE"],
                                "apiGroups": [""],
                                "apiVersions": ["v1"],
                                "resources": ["pods"],
                            }
                        ],
                        "failurePolicy": "Fail",
                        "admissionReviewVersions": ["v1beta1", "v1"],
                        "namespaceSelector": {
                            "matchExpressions": [
                                {"key": MEMBER_OF, "operator": "In", "values": [mesh]},
                                {"key": "maistra.io/ignore-namespace", "operator": "DoesNotExist"},
                                {
                                    "key": "istio-injection",
                                    "operator": "NotIn",
                                    "values": ["disabled"],
                                },
                                {"key": "istio-env", "operator": "DoesNotExist"},
                            ]
                        },
                        "objectSelector": {
                            "matchExpressions": [
                                {"key": "app", "operator": "NotIn", "values": ["istiod"]},
                            ]
                        },
                    }
                ],
            },
        )
        return None

    def _readiness(
        self,
        ctx: Context,
        smcp: JsonObject,
        status: JsonObject,
        reconciled: JsonObject,
        conditions: Iterable[JsonObject],
    ) -> JsonObject:
        mesh = smcp["metadata"]["namespace"]
        found = ctx.kube.get(
            f"/apis/apps/v1/namespaces/{mesh}/deployments", {"labelSelector": f"{OWNER}={mesh}"}
        )
        readiness: dict[str, bool] = {}
        for deployment in found.get("items") or []:
            component = (deployment["metadata"].get("labels") or {}).get(COMPONENT)
            if component:
                readiness[component] = readiness.get(component, True) and _deployment_ready(
                    deployment
                )
        ready = sorted(c for c, ok in readiness.items() if ok)
        unready = sorted(c for c, ok in readiness.items() if not ok)
        known = {c.get("resource") for c in status.get("components") or []}
        pending = sorted(str(c) for c in known if c and c not in readiness)
        status["readiness"] = {
            "components": {"ready": ready, "unready": unready, "pending": pending}
        }
        annotations = dict(status.get("annotations") or {})
        annotations["readyComponentCount"] = f"{len(ready)}/{len(known)}"
        status["annotations"] = annotations
        if reconciled.get("status") != "True":
            return condition(
                conditions,
                "Ready",
                reconciled["status"],
                reconciled.get("reason", ""),
                reconciled.get("message", ""),
            )
        if unready:
            message = f"The following components are not fully available: [{' '.join(unready)}]"
            return condition(conditions, "Ready", "False", "ComponentsNotReady", message)
        return condition(
            conditions,
            "Ready",
            "True",
            "ComponentsReady",
            "All component deployments are Available",
        )

    def _remove_orphans(self, ctx: Context, kept: set[tuple[str, str]]) -> None:
        path = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
        found = ctx.kube.get(path, {"labelSelector": f"{OWNER},maistra.io/owner-name"})
        for config in found.get("items") or []:
            labels = config["metadata"].get("labels") or {}
            if (labels[OWNER], labels["maistra.io/owner-name"]) not in kept:
                ctx.kube.delete(f"{path}/{config['metadata']['name']}")
                ctx.writes += 1


def _component_conditions(status: JsonObject) -> list[JsonObject]:
    components = status.get("components") or []
    return list(components[0].get("conditions") or []) if components else []


def _deployment_ready(deployment: JsonObject) -> bool:
    """readiness.go: readyReplicas >= replicas, observed this generation, Available=True."""
    status = deployment.get("status") or {}
    if int(status.get("readyReplicas") or 0) < int(status.get("replicas") or 0):
        return False
    if int(status.get("observedGeneration") or 0) < int(
        deployment["metadata"].get("generation") or 0
    ):
        return False
    available = find_condition(deployment, "Available")
    return available is not None and available.get("status") == "True"


def _is_excluded(namespace: str) -> bool:
    return namespace in EXCLUDED or namespace.startswith(EXCLUDED_PREFIXES)


class ServiceMeshMemberRollStandin(Reconciler):
    name = "servicemesh-memberroll-standin"

    def reconcile(self, ctx: Context) -> None:
        if ctx.served(SMMR) is None:
            return
        rolls = ctx.items(SMMR)
        if not rolls:
            return
        namespaces = {n["metadata"]["name"]: n for n in ctx.items("Namespace")}
        members = ctx.items(SMM)
        for roll in rolls:
            self._reconcile_one(ctx, roll, namespaces, members)

    def _reconcile_one(
        self,
        ctx: Context,
        roll: JsonObject,
        namespaces: dict[str, JsonObject],
        all_members: list[JsonObject],
    ) -> None:
        meta = roll["metadata"]
        mesh_ns = meta["namespace"]
        status: JsonObject = json.loads(json.dumps(roll.get("status") or {}))
        previous = status.get("conditions") or []
        if meta["name"] != DEFAULT_NAME:
            message = f'the ServiceMeshMemberRoll name is invalid; must be "{DEFAULT_NAME}"'
            self._write(
                ctx, roll, status, condition(previous, "Ready", "False", "ErrInvalidName", message)
            )
            return
        meshes = ctx.items(SMCP, mesh_ns)
        if len(meshes) > 1:
            message = "Multiple ServiceMeshControlPlane resources exist in the namespace"
            self._write(
                ctx,
                roll,
                status,
                condition(previous, "Ready", "False", "ErrMultipleSMCPs", message),
            )
            return
        mesh = meshes[0] if meshes else None
        required = self._required(roll, namespaces)
        member_statuses = {s["namespace"]: s for s in status.get("memberStatuses") or []}
        if mesh is not None:
            for ns in required:
                self._ensure_member(ctx, ns, mesh, namespaces, all_members, member_statuses)
        members = [
            m
            for m in ctx.items(SMM)
            if ((m.get("spec") or {}).get("controlPlaneRef") or {}).get("namespace") == mesh_ns
        ]
        for member in members:
            created = (member["metadata"].get("annotations") or {}).get(CREATED_BY)
            gone = mesh is None or member["metadata"]["namespace"] not in required
            if (
                not member["metadata"].get("deletionTimestamp")
                and created == ROLL_CONTROLLER
                and gone
            ):
                resource = ctx.served(SMM)
                assert resource is not None
                ctx.kube.delete(resource.object_path(DEFAULT_NAME, member["metadata"]["namespace"]))
                ctx.writes += 1
        known = (set(required) | {m["metadata"]["namespace"] for m in members}) - {mesh_ns}
        configured, up_to_date, terminating = set(), set(), set()
        for member in members:
            ns = member["metadata"]["namespace"]
            if member["metadata"].get("deletionTimestamp"):
                terminating.add(ns)
            else:
                ref = (member.get("spec") or {}).get("controlPlaneRef") or {}
                rec = find_condition(member, "Reconciled")
                if (
                    mesh is not None
                    and ref.get("name") == mesh["metadata"]["name"]
                    and rec is not None
                    and rec.get("status") == "True"
                ):
                    configured.add(ns)
                    member_version = (member.get("status") or {}).get("meshReconciledVersion")
                    if member_version == reconciled_version(mesh):
                        up_to_date.add(ns)
            if rec := find_condition(member, "Reconciled"):
                _set_member_condition(member_statuses, ns, rec)
        status["members"] = sorted(known)
        status["pendingMembers"] = sorted(known - up_to_date - terminating)
        status["configuredMembers"] = sorted(configured)
        status["terminatingMembers"] = sorted(terminating)
        if mesh is None:
            status.pop("meshGeneration", None)
            status.pop("meshReconciledVersion", None)
        else:
            generation = int((mesh.get("status") or {}).get("observedGeneration") or 0)
            if generation:
                status["meshGeneration"] = generation
            status["meshReconciledVersion"] = reconciled_version(mesh)
        status["memberStatuses"] = [
            member_statuses.get(ns) or {"namespace": ns, "conditions": []} for ns in sorted(known)
        ]
        if mesh is None:
            ready = condition(
                previous,
                "Ready",
                "False",
                "ErrSMCPMissing",
                "No ServiceMeshControlPlane exists in the namespace",
            )
        elif status["pendingMembers"]:
            pending = " ".join(status["pendingMembers"])
            ready = condition(
                previous,
                "Ready",
                "False",
                "ReconcileError",
                f"The following namespaces are not yet configured: [{pending}]",
            )
        else:
            ready = condition(
                previous,
                "Ready",
                "True",
                "Configured",
                "All namespaces have been configured successfully",
            )
        self._write(ctx, roll, status, ready)

    def _required(self, roll: JsonObject, namespaces: dict[str, JsonObject]) -> list[str]:
        spec = roll.get("spec") or {}
        wanted = {m for m in spec.get("members") or [] if m != "*"}
        everyone = "*" in (spec.get("members") or [])
        for name, namespace in namespaces.items():
            labels = namespace["metadata"].get("labels") or {}
            selected = any(
                (s.get("matchLabels") or {})
                and all(labels.get(k) == v for k, v in (s.get("matchLabels") or {}).items())
                for s in spec.get("memberSelectors") or []
            )
            if (everyone or selected) and not _is_excluded(name):
                wanted.add(name)
        return sorted(wanted)

    def _ensure_member(
        self,
        ctx: Context,
        ns: str,
        mesh: JsonObject,
        namespaces: dict[str, JsonObject],
        all_members: list[JsonObject],
        member_statuses: dict[str, JsonObject],
    ) -> None:
        mesh_name, mesh_ns = mesh["metadata"]["name"], mesh["metadata"]["namespace"]
        member = next(
            (
                m
                for m in all_members
                if m["metadata"]["namespace"] == ns and m["metadata"]["name"] == DEFAULT_NAME
            ),
            None,
        )
        if member is None:
            if ns not in namespaces:
                _set_member_condition(
                    member_statuses,
                    ns,
                    {
                        "type": "Reconciled",
                        "status": "False",
                        "reason": "NamespaceNotExists",
                        "message": f"Namespace {ns} does not exist",
                    },
                )
                return
            resource = ctx.served(SMM)
            assert resource is not None
            ctx.kube.create(
                resource.collection_path(ns),
                {
                    "apiVersion": "maistra.io/v1",
                    "kind": "ServiceMeshMember",
                    "metadata": {
                        "name": DEFAULT_NAME,
                        "namespace": ns,
                        "annotations": {CREATED_BY: ROLL_CONTROLLER},
                    },
                    "spec": {"controlPlaneRef": {"name": mesh_name, "namespace": mesh_ns}},
                },
            )
            ctx.writes += 1
            return
        ref = (member.get("spec") or {}).get("controlPlaneRef") or {}
        if ref.get("name") != mesh_name or ref.get("namespace") != mesh_ns:
            message = (
                f"ServiceMeshMember {ns}/{DEFAULT_NAME} exists, but references "
                f"ServiceMeshControlPlane {ref.get('namespace')}/{ref.get('name')}"
            )
            _set_member_condition(
                member_statuses,
                ns,
                {
                    "type": "Reconciled",
                    "status": "False",
                    "reason": "ReferencesDifferentControlPlane",
                    "message": message,
                },
            )

    def _write(self, ctx: Context, roll: JsonObject, status: JsonObject, ready: JsonObject) -> None:
        status["conditions"] = [ready]
        for key in (
            "members",
            "configuredMembers",
            "pendingMembers",
            "terminatingMembers",
            "memberStatuses",
        ):
            status.setdefault(key, [])
        annotations = dict(status.get("annotations") or {})
        annotations["configuredMemberCount"] = (
            f"{len(status['configuredMembers'])}/{len(status['members'])}"
        )
        status["annotations"] = annotations
        status["observedGeneration"] = int(roll["metadata"].get("generation") or 1)
        write_status(ctx, roll, status)


def _set_member_condition(statuses: dict[str, JsonObject], ns: str, wanted: JsonObject) -> None:
    """memberroll setMemberCondition: the time moves only when the status changes."""
    entry = statuses.setdefault(ns, {"namespace": ns, "conditions": []})
    made = condition(
        entry.get("conditions"),
        wanted["type"],
        wanted["status"],
        wanted.get("reason", ""),
        wanted.get("message", ""),
    )
    entry["conditions"] = [c for c in entry["conditions"] if c.get("type") != made["type"]] + [made]


class ServiceMeshMemberStandin(Reconciler):
    name = "servicemesh-member-standin"

    def reconcile(self, ctx: Context) -> None:
        resource = ctx.served(SMM)
        if resource is None:
            return
        for member in ctx.items(SMM):
            meta = member["metadata"]
            path = resource.object_path(meta["name"], meta["namespace"])
            if meta.get("deletionTimestamp"):
                self._finalize(ctx, member, path)
            elif FINALIZER not in (meta.get("finalizers") or []):
                finalizers = [*(meta.get("finalizers") or []), FINALIZER]
                ctx.kube.patch(
                    path,
                    {
                        "metadata": {
                            "finalizers": finalizers,
                            "resourceVersion": meta["resourceVersion"],
                        }
                    },
                )
                ctx.writes += 1
            else:
                self._reconcile_one(ctx, member)

    def _reconcile_one(self, ctx: Context, member: JsonObject) -> None:
        meta = member["metadata"]
        ns = meta["namespace"]
        ref = (member.get("spec") or {}).get("controlPlaneRef") or {}
        mesh_name, mesh_ns = ref.get("name", ""), ref.get("namespace", "")
        if meta["name"] != DEFAULT_NAME:
            self._report(
                ctx,
                member,
                "InvalidName",
                f'the ServiceMeshMember name is invalid; must be "{DEFAULT_NAME}"',
            )
            return
        if ns == mesh_ns:
            return
        annotations = {"controlPlaneRef": f"{mesh_ns}/{mesh_name}"}
        smcp = ctx.get(SMCP, mesh_name, mesh_ns) if mesh_name and mesh_ns else None
        if smcp is None:
            self._report(
                ctx,
                member,
                "ErrorControlPlaneMissing",
                "the referenced ServiceMeshControlPlane object does not exist",
                annotations,
            )
            return
        if ctx.get(SMMR, DEFAULT_NAME, mesh_ns) is None:
            resource = ctx.served(SMMR)
            assert resource is not None
            ctx.kube.create(
                resource.collection_path(mesh_ns),
                {
                    "apiVersion": "maistra.io/v1",
                    "kind": "ServiceMeshMemberRoll",
                    "metadata": {
                        "name": DEFAULT_NAME,
                        "namespace": mesh_ns,
                        "annotations": {CREATED_BY: MEMBER_CONTROLLER},
                    },
                    "spec": {},
                },
            )
            ctx.writes += 1
        namespace = ctx.get("Namespace", ns, None)
        if namespace is None:
            return  # the namespace is being deleted with its member
        member_of = (namespace["metadata"].get("labels") or {}).get(MEMBER_OF)
        if member_of and member_of != mesh_ns:
            self._report(
                ctx,
                member,
                "ErrorConfiguringNamespace",
                f"cannot reconcile namespace {ns} in mesh {mesh_ns}, as it is already "
                f"a member of {member_of}",
                annotations,
            )
            return
        if member_of != mesh_ns:
            ctx.kube.patch(
                f"/api/v1/namespaces/{ns}", {"metadata": {"labels": {MEMBER_OF: mesh_ns}}}
            )
            ctx.writes += 1
        self._network_policies(ctx, ns, smcp)
        status = self._status(member, True, "", "", annotations)
        smcp_status = smcp.get("status") or {}
        if smcp_status.get("observedGeneration"):
            status["meshGeneration"] = int(smcp_status["observedGeneration"])
        status["meshReconciledVersion"] = reconciled_version(smcp)
        write_status(ctx, member, status)

    @staticmethod
    def _network_policies(ctx: Context, namespace: str, smcp: JsonObject) -> None:
        """The mesh's NetworkPolicies copied into the member namespace, created when missing
        and never updated (MO ovs_networkpolicy.go ``reconcileNamespaceInMesh``; the policies
        are mesh-config's templates/networkpolicy.yaml, rendered unless
        ``spec.security.manageNetworkPolicy`` is false)."""
        security = (smcp.get("spec") or {}).get("security") or {}
        if security.get("manageNetworkPolicy") is False:
            return
        mesh_ns, revision = smcp["metadata"]["namespace"], smcp["metadata"]["name"]
        collection = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies"
        labels = {"maistra-version": MAISTRA_VERSION, "app": "istio", MEMBER_OF: mesh_ns}
        policies: dict[str, JsonObject] = {
            f"istio-mesh-{revision}": {
                "ingress": [
                    {"from": [{"namespaceSelector": {"matchLabels": {MEMBER_OF: mesh_ns}}}]}
                ]
            },
            f"istio-expose-route-{revision}": {
                "podSelector": {"matchLabels": {"maistra.io/expose-route": "true"}},
                "ingress": [
                    {
                        "from": [
                            {"namespaceSelector": {"matchLabels": {ROUTER_POLICY_GROUP: "ingress"}}}
                        ]
                    }
                ],
            },
        }
        for name, spec in policies.items():
            if ctx.kube.get_or_none(f"{collection}/{name}") is not None:
                continue
            body = {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "spec": {"podSelector": {}, **spec},
            }
            ctx.kube.create(collection, body)
            ctx.writes += 1

    def _report(
        self,
        ctx: Context,
        member: JsonObject,
        reason: str,
        message: str,
        annotations: dict[str, str] | None = None,
    ) -> None:
        write_status(ctx, member, self._status(member, False, reason, message, annotations))

    def _status(
        self,
        member: JsonObject,
        ok: bool,
        reason: str,
        message: str,
        annotations: dict[str, str] | None,
    ) -> JsonObject:
        status: JsonObject = json.loads(json.dumps(member.get("status") or {}))
        previous = status.get("conditions") or []
        flag = "True" if ok else "False"
        status["conditions"] = [
            condition(previous, "Reconciled", flag, reason, message),
            condition(previous, "Ready", flag, reason, message),
        ]
        status["observedGeneration"] = int(member["metadata"].get("generation") or 1)
        if annotations:
            status["annotations"] = {**(status.get("annotations") or {}), **annotations}
        return status

    def _finalize(self, ctx: Context, member: JsonObject, path: str) -> None:
        meta = member["metadata"]
        if FINALIZER not in (meta.get("finalizers") or []):
            return
        ref = (member.get("spec") or {}).get("controlPlaneRef") or {}
        namespace = ctx.get("Namespace", meta["namespace"], None)
        labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
        if namespace is not None and labels.get(MEMBER_OF) == ref.get("namespace"):
            ctx.kube.patch(
                f"/api/v1/namespaces/{meta['namespace']}",
                {"metadata": {"labels": {MEMBER_OF: None}}},
            )
            # removeNamespaceFromMesh: the mesh's NetworkPolicies go with the membership
            collection = (
                f"/apis/networking.k8s.io/v1/namespaces/{meta['namespace']}/networkpolicies"
            )
            mesh = {"labelSelector": f"{MEMBER_OF}={ref.get('namespace')}"}
            for policy in ctx.kube.get(collection, mesh).get("items") or []:
                try:
                    ctx.kube.delete(f"{collection}/{policy['metadata']['name']}")
                except NotFound:
                    continue
        finalizers = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
        try:
            ctx.kube.patch(
                path,
                {
                    "metadata": {
                        "finalizers": finalizers,
                        "resourceVersion": meta["resourceVersion"],
                    }
                },
            )
        except NotFound:
            return
        ctx.writes += 1


def mesh_standins() -> list[Reconciler]:
    """The mesh's stand-ins in pass order: the control plane renders the injector's
    configuration, the injector reads it, then the roll and its members."""
    injector = SidecarInjectorStandin()
    return [
        ServiceMeshControlPlaneStandin(injector),
        injector,
        ServiceMeshMemberRollStandin(),
        ServiceMeshMemberStandin(),
    ]
