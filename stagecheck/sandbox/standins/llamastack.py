"""A stand-in for llama-stack-k8s-operator v0.3.0 (the RHOAI 2.25 build): NOT the operator.

It reconciles each LlamaStackDistribution (llamastack.io/v1alpha1) by the rules of
llamastack/llama-stack-k8s-operator v0.3.0, read in controllers/llamastackdistribution_controller.go
(``reconcileDeployment``, ``updateStatus``, ``updateDeploymentStatus``, ``updateServiceStatus``,
``updateDistributionConfig``, ``getProviderInfo``, ``getVersionInfo``), controllers/status.go
(condition types, reasons, messages), controllers/resource_helper.go (container, probe, env,
storage, pod overrides, distribution validation), controllers/manifests/base/*.yaml with
pkg/deploy/kustomizer.go (Service, ServiceAccount, ClusterRoleBinding) and
api/v1alpha1/llamastackdistribution_types.go (field names, ``HasPorts``):

- Objects, each with a controller owner reference: Deployment ``<n>`` (selector and pod labels
  ``app=llama-stack``, ``app.kubernetes.io/instance=<n>``; one container ``containerSpec.name``
  or ``llama-stack`` with one unnamed port, ``containerSpec.port`` or 8321, a startupProbe GET
  ``/v1/health``; env ``HF_HOME`` then the user's env; volume ``lls-storage``, an emptyDir or
  PVC ``<n>-pvc`` with the init container ``update-pvc-permissions``; ``serviceAccountName``
  from ``podOverrides`` else ``<n>-sa``; ``podOverrides.volumes`` appended to the pod's and
  ``volumeMounts`` to the container's, as given (``configurePodOverrides``); ``fsGroup: 0``).
  Pod annotations: none (the operator adds only ConfigMap hashes, and the spec has no field for
  others, so it can never put ``sidecar.istio.io/inject`` on its pods). Service
  ``<n>-service`` (ClusterIP, port ``http`` = targetPort = the container port) only when
  ``HasPorts`` (a port or env is given);
  ServiceAccount ``<n>-sa``; ClusterRoleBinding ``<n>-crb`` to ``system:openshift:scc:anyuid``
  only if that ClusterRole exists.
- Distributions: the RHOAI build knows only ``rh-dev`` (red-hat-data-services fork,
  pkg/cluster/cluster.go with RELATED_IMAGE_RH_DISTRIBUTION); another name fails validation:
  phase ``Failed``, DeploymentReady False/DeploymentFailed "Resource reconciliation failed:
  failed to reconcile Deployment: failed to validate distribution: <name>. Distribution name not
  supported", nothing else changes.
- Status, on the status as it was (fields not touched are kept, e.g. serviceURL):
  ``version.operatorVersion`` "0.3.0" only when empty; phase and DeploymentReady from the
  Deployment's readyReplicas against ``spec.replicas`` (missing: Pending "Deployment is pending";
  0: Initializing, same message; fewer or more: Initializing "Deployment is scaling[ down]:
  R/N replicas ready"; equal: Ready, True/DeploymentReady "Deployment is ready");
  ``availableReplicas`` = readyReplicas; StorageReady from the PVC's phase; ServiceReady and
  ``serviceURL`` ``http://<n>-service.<ns>.svc.cluster.local:<port>``; distributionConfig
  ``activeDistribution`` (the name, or ``custom`` for an image) and ``availableDistributions``.
  Ready: ``distributionConfig.providers`` = the server's ``GET <serviceURL>/v1/providers``
  ``data[]`` as Go decodes it into ``ProviderInfo`` (its five fields, values verbatim; any
  failure clears them), ``version.llamaStackServerVersion`` from
  ``GET /v1/version`` (kept on failure), and HealthCheck True/HealthCheckPassed "Health check
  passed" whatever those calls returned. Not ready: HealthCheck False/HealthCheckFailed
  "Deployment not ready" and no providers.

Where it knowingly differs:
- The Deployment is read as the operator's cache sees it: from the start of the pass, before
  this pass created it (so a new LLSD shows ``Pending`` first, as the real one usually does).
- ``lastTransitionTime`` moves only when a condition's status changes, and
  ``version.lastUpdated`` only when something else in the status changes; the real operator
  stamps both on every reconcile (and reconciles only on events). Here a settled world must
  see no writes.
- The server's answers are re-read every few seconds (calls.py), where v0.3.0 asks only when
  something triggers a reconcile (it does not requeue once Ready).
- A provider without ``config`` gets ``{}`` (Go would write ``null``, which the structural
  schema's required field would refuse).
- Not modelled: ``userConfig`` and ``tlsConfig`` (ConfigMap hashes, ``SSL_CERT_FILE``, the CA
  bundle init container), the ODH trusted-CA-bundle auto-detection, the NetworkPolicy (off by
  default in v0.3.0) and ``containerSpec.resources`` defaults beyond copying them.
"""

from __future__ import annotations

import copy
from typing import Any

from stagecheck.errors import StagecheckError
from stagecheck.kube.client import JsonObject
from stagecheck.sandbox.standins.base import (
    Context,
    Reconciler,
    apply_owned,
    condition,
    now,
    write_status,
)
from stagecheck.sandbox.standins.calls import Calls

KIND = "LlamaStackDistribution.llamastack.io"
OPERATOR_VERSION = "0.3.0"  # release/operator.yaml; RHOAI's params.env
# The RHOAI 2.25 build's one distribution (RELATED_IMAGE_RH_DISTRIBUTION)
DISTRIBUTIONS = {"rh-dev": "registry.redhat.io/rhoai/odh-llama-stack-core-rhel9:v2.25"}
DEFAULT_CONTAINER, DEFAULT_PORT, DEFAULT_MOUNT = "llama-stack", 8321, "/.llama"
APP_LABEL = {"app": "llama-stack"}
MANIFEST_LABELS = {
    "app.kubernetes.io/managed-by": "llama-stack-operator",
    "app.kubernetes.io/part-of": "llama-stack",
}
SCC_CLUSTER_ROLE = "system:openshift:scc:anyuid"
CALL_TIMEOUT_S = 5.0  # the operator's http.Client timeout


class ReconcileError(StagecheckError):
    """What the operator's reconcileResources returns: the LLSD becomes Failed."""


class LlamaStackOperatorStandin(Reconciler):
    name = "llamastack-operator-standin"

    def __init__(self) -> None:
        self.calls = Calls()

    def reconcile(self, ctx: Context) -> None:
        if ctx.served(KIND) is None:
            return
        cache = {
            (d["metadata"]["namespace"], d["metadata"]["name"]): d
            for d in ctx.items("Deployment.apps")
        }
        for llsd in ctx.items(KIND):
            meta = llsd["metadata"]
            if meta.get("deletionTimestamp"):
                continue
            try:
                self._resources(ctx, llsd)
                error = None
            except ReconcileError as failed:
                error = str(failed)
            deployment = cache.get((meta["namespace"], meta["name"]))
            write_status(ctx, llsd, self._status(ctx, llsd, deployment, error))

    # -- objects -----------------------------------------------------------------------------
    def _resources(self, ctx: Context, llsd: JsonObject) -> None:
        meta, server = llsd["metadata"], _server(llsd)
        name, namespace = meta["name"], meta["namespace"]
        if server.get("storage") is not None:
            size = server["storage"].get("size") or "10Gi"
            apply_owned(ctx, self.name, llsd, _pvc(name, namespace, size))
        apply_owned(ctx, self.name, llsd, _service_account(name, namespace))
        if ctx.get("ClusterRole.rbac.authorization.k8s.io", SCC_CLUSTER_ROLE, None) is not None:
            apply_owned(ctx, self.name, None, _scc_binding(name, namespace))
        if has_ports(llsd):
            apply_owned(ctx, self.name, llsd, _service(name, namespace, container_port(llsd)))
        image = _image(server.get("distribution") or {})
        apply_owned(ctx, self.name, llsd, deployment(llsd, image))

    # -- status ------------------------------------------------------------------------------
    def _status(
        self, ctx: Context, llsd: JsonObject, deployment: JsonObject | None, error: str | None
    ) -> JsonObject:
        before = llsd.get("status") or {}
        status: dict[str, Any] = copy.deepcopy(before)
        version = status.setdefault("version", {})
        if not version.get("operatorVersion"):
            version["operatorVersion"] = OPERATOR_VERSION
        conditions: list[JsonObject] = list(status.get("conditions") or [])
        previous = before.get("conditions")

        def set_condition(type_: str, ok: bool, message: str, good: str, bad: str) -> None:
            made = (
                condition(previous, type_, "True", good, message)
                if ok
                else condition(previous, type_, "False", bad, message)
            )
            at = next((i for i, c in enumerate(conditions) if c.get("type") == type_), None)
            if at is None:
                conditions.append(made)
            else:
                conditions[at] = made

        def deployment_ready(ok: bool, message: str) -> None:
            set_condition("DeploymentReady", ok, message, "DeploymentReady", "DeploymentFailed")

        if error is not None:
            status["phase"] = "Failed"
            deployment_ready(False, f"Resource reconciliation failed: {error}")
        else:
            ready = self._deployment_status(llsd, deployment, status, deployment_ready)
            self._storage_status(ctx, llsd, set_condition)
            if has_ports(llsd):
                service = ctx.get("Service", f"{llsd['metadata']['name']}-service", _ns(llsd))
                if service is None:
                    set_condition(
                        "ServiceReady", False, "Failed to get Service: not found",
                        "ServiceReady", "ServiceFailed",
                    )  # fmt: skip
                else:
                    status["serviceURL"] = service_url(llsd)
                    set_condition(
                        "ServiceReady", True, "Service is ready", "ServiceReady", "ServiceFailed"
                    )
            config = status.setdefault("distributionConfig", {})
            config["availableDistributions"] = dict(DISTRIBUTIONS)
            distribution = _server(llsd).get("distribution") or {}
            active = distribution.get("name") or ("custom" if distribution.get("image") else "")
            if active:
                config["activeDistribution"] = active
            else:
                config.pop("activeDistribution", None)
            if ready:
                status["phase"] = "Ready"
                providers = self.calls.get(ctx, service_url(llsd) + "/v1/providers", CALL_TIMEOUT_S)
                data = (providers.body or {}).get("data") if providers.ok else None
                if isinstance(providers.body, dict) and isinstance(data, list) and data:
                    config["providers"] = [provider_info(p) for p in data]
                else:  # an error, or an empty list (omitempty): no providers
                    config.pop("providers", None)
                answer = self.calls.get(ctx, service_url(llsd) + "/v1/version", CALL_TIMEOUT_S)
                if answer.ok and isinstance(answer.body, dict) and answer.body.get("version"):
                    version["llamaStackServerVersion"] = str(answer.body["version"])
                set_condition(
                    "HealthCheck", True, "Health check passed", "HealthCheckPassed",
                    "HealthCheckFailed",
                )  # fmt: skip
            else:
                set_condition(
                    "HealthCheck", False, "Deployment not ready", "HealthCheckPassed",
                    "HealthCheckFailed",
                )  # fmt: skip
                config.pop("providers", None)
        status["conditions"] = conditions
        # lastUpdated: stamped when anything else changed (see the module's differences)
        unstamped = {**status, "version": {k: v for k, v in version.items() if k != "lastUpdated"}}
        old_version = dict(before.get("version") or {})
        old_stamp = old_version.pop("lastUpdated", None)
        if old_stamp is None or unstamped != {**before, "version": old_version}:
            version["lastUpdated"] = now()
        else:
            version["lastUpdated"] = old_stamp
        return status

    @staticmethod
    def _deployment_status(
        llsd: JsonObject, deployment: JsonObject | None, status: dict[str, Any], report: Any
    ) -> bool:
        wanted = int((llsd.get("spec") or {}).get("replicas") or 0)
        ready = int(((deployment or {}).get("status") or {}).get("readyReplicas") or 0)
        made = False
        if deployment is None:
            status["phase"] = "Pending"
            report(False, "Deployment is pending")
        elif ready == 0:
            status["phase"] = "Initializing"
            report(False, "Deployment is pending")
        elif ready < wanted:
            status["phase"] = "Initializing"
            report(False, f"Deployment is scaling: {ready}/{wanted} replicas ready")
        elif ready > wanted:
            status["phase"] = "Initializing"
            report(False, f"Deployment is scaling down: {ready}/{wanted} replicas ready")
        else:
            status["phase"] = "Ready"
            report(True, "Deployment is ready")
            made = True
        if ready:
            status["availableReplicas"] = ready
        else:  # int32 with omitempty
            status.pop("availableReplicas", None)
        return made

    @staticmethod
    def _storage_status(ctx: Context, llsd: JsonObject, set_condition: Any) -> None:
        if _server(llsd).get("storage") is None:
            return
        name = f"{llsd['metadata']['name']}-pvc"
        claim = ctx.get("PersistentVolumeClaim", name, _ns(llsd))
        if claim is None:
            message = f'Failed to get PVC: persistentvolumeclaims "{name}" not found'
            set_condition("StorageReady", False, message, "StorageReady", "StorageFailed")
            return
        phase = (claim.get("status") or {}).get("phase") or ""
        bound = phase == "Bound"
        message = "Storage is ready" if bound else f"PVC is not bound: {phase}"
        set_condition("StorageReady", bound, message, "StorageReady", "StorageFailed")


# -- what v0.3.0 builds ---------------------------------------------------------------------
def _server(llsd: JsonObject) -> JsonObject:
    return dict((llsd.get("spec") or {}).get("server") or {})


def _ns(llsd: JsonObject) -> str:
    return str(llsd["metadata"]["namespace"])


def has_ports(llsd: JsonObject) -> bool:
    """api/v1alpha1 ``HasPorts``: a port or any env var (not only a port)."""
    spec = _server(llsd).get("containerSpec") or {}
    return bool(spec.get("port")) or bool(spec.get("env"))


def container_port(llsd: JsonObject) -> int:
    return int((_server(llsd).get("containerSpec") or {}).get("port") or DEFAULT_PORT)


def service_url(llsd: JsonObject) -> str:
    """``getServerURL``: always the ``-service`` name and the container port."""
    meta = llsd["metadata"]
    return (
        f"http://{meta['name']}-service.{meta['namespace']}.svc.cluster.local:"
        f"{container_port(llsd)}"
    )


def provider_info(reply: Any) -> JsonObject:
    """One ``data[]`` entry as ``json.Unmarshal`` into v1alpha1 ``ProviderInfo`` keeps it: its
    five fields (others dropped), ``health.message`` "" when absent (no omitempty)."""
    entry = reply if isinstance(reply, dict) else {}
    health: dict[str, Any] = entry["health"] if isinstance(entry.get("health"), dict) else {}
    config = entry.get("config")
    return {
        "api": str(entry.get("api") or ""),
        "provider_id": str(entry.get("provider_id") or ""),
        "provider_type": str(entry.get("provider_type") or ""),
        "config": config if config is not None else {},
        "health": {
            "status": str(health.get("status") or ""),
            "message": str(health.get("message") or ""),
        },
    }


def _image(distribution: JsonObject) -> str:
    name, image = distribution.get("name"), distribution.get("image")
    if name:
        if name not in DISTRIBUTIONS:
            raise ReconcileError(
                "failed to reconcile Deployment: failed to validate distribution: "
                f"{name}. Distribution name not supported"
            )
        return DISTRIBUTIONS[name]
    if image:
        return str(image)
    raise ReconcileError(
        "failed to reconcile Deployment: failed to validate distribution: either "
        "distribution.name or distribution.image must be set"
    )


def deployment(llsd: JsonObject, image: str) -> JsonObject:
    meta, server = llsd["metadata"], _server(llsd)
    spec = server.get("containerSpec") or {}
    storage = server.get("storage")
    mount = (storage or {}).get("mountPath") or DEFAULT_MOUNT
    port = container_port(llsd)
    container: dict[str, Any] = {
        "name": spec.get("name") or DEFAULT_CONTAINER,
        "image": image,
        "ports": [{"containerPort": port}],
        "startupProbe": {
            "httpGet": {"path": "/v1/health", "port": port},
            "initialDelaySeconds": 15,
            "timeoutSeconds": 30,
            "failureThreshold": 3,
            "successThreshold": 1,
        },
        "env": [{"name": "HF_HOME", "value": mount}, *(spec.get("env") or [])],
        "volumeMounts": [{"name": "lls-storage", "mountPath": mount}],
    }
    if spec.get("resources"):
        container["resources"] = spec["resources"]
    if spec.get("command"):
        container["command"] = spec["command"]
    if spec.get("args"):
        container["args"] = spec["args"]
    overrides = server.get("podOverrides") or {}
    container["volumeMounts"] += overrides.get("volumeMounts") or []
    pod: dict[str, Any] = {"containers": [container]}
    if storage is not None:
        pod["volumes"] = [
            {"name": "lls-storage", "persistentVolumeClaim": {"claimName": f"{meta['name']}-pvc"}}
        ]
        pod["initContainers"] = [
            {
                "name": "update-pvc-permissions",
                "image": image,
                "command": ["/bin/sh", "-c", f"chown --verbose --recursive 1001:0 {mount}"],
                "securityContext": {"runAsUser": 0},
                "volumeMounts": [{"name": "lls-storage", "mountPath": mount}],
            }
        ]
    else:
        pod["volumes"] = [{"name": "lls-storage", "emptyDir": {}}]
    pod["volumes"] += overrides.get("volumes") or []
    pod["serviceAccountName"] = overrides.get("serviceAccountName") or f"{meta['name']}-sa"
    pod["securityContext"] = {"fsGroup": 0}
    labels = {**APP_LABEL, "app.kubernetes.io/instance": meta["name"]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": {
            "replicas": int((llsd.get("spec") or {}).get("replicas") or 0),
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod},
        },
    }


def _service(name: str, namespace: str, port: int) -> JsonObject:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{name}-service", "namespace": namespace, "labels": MANIFEST_LABELS},
        "spec": {
            "type": "ClusterIP",
            "selector": {**APP_LABEL, "app.kubernetes.io/instance": name},
            "ports": [{"name": "http", "protocol": "TCP", "port": port, "targetPort": port}],
        },
    }


def _service_account(name: str, namespace: str) -> JsonObject:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": f"{name}-sa",
            "namespace": namespace,
            "labels": MANIFEST_LABELS,
            "annotations": {"openshift.io/scc": "anyuid"},
        },
    }


def _scc_binding(name: str, namespace: str) -> JsonObject:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"{name}-crb", "labels": MANIFEST_LABELS},
        "subjects": [{"kind": "ServiceAccount", "name": f"{name}-sa", "namespace": namespace}],
        "roleRef": {
            "kind": "ClusterRole",
            "name": SCC_CLUSTER_ROLE,
            "apiGroup": "rbac.authorization.k8s.io",
        },
    }


def _pvc(name: str, namespace: str, size: str) -> JsonObject:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": f"{name}-pvc", "namespace": namespace, "labels": MANIFEST_LABELS},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
    }
