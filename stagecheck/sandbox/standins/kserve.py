"""A stand-in for KServe 0.15 in Serverless mode with the Knative Serving under it: NOT KServe.

It reconciles each InferenceService (serving.kserve.io/v1beta1) of the world's mode, Serverless
(RHOAI's ``defaultDeploymentMode``; annotation ``serving.kserve.io/deploymentMode``), by the
rules of kserve/kserve v0.15.2, read in:

- pkg/controller/v1beta1/inferenceservice/components/predictor.go (``buildObjectMeta``): the
  predictor's pod labels are the ISVC's labels, the predictor's labels, then
  ``serving.kserve.io/inferenceservice=<isvc>`` and ``component=predictor``; its annotations
  the ISVC's minus ``ServiceAnnotationDisallowedList`` (min/max-scale, the storage-initializer
  source URI, ``kubectl.kubernetes.io/last-applied-configuration``; pkg/constants) plus the
  predictor's. So the ISVC's ``sidecar.istio.io/inject`` reaches the pod template.
- reconcilers/knative/ksvc_reconciler.go: a Knative Service ``<isvc>-predictor`` from that
  metadata; Knative then runs Revision ``<isvc>-predictor-00001`` as Deployment
  ``<isvc>-predictor-00001-deployment`` (pods labelled ``serving.knative.dev/revision`` etc.,
  containers ``kserve-container`` on 8080 and ``queue-proxy``).
- reconcilers/ingress/ingress_reconciler.go: Service ``<isvc>`` of type ExternalName to the
  local gateway (RHOAI's ``kserve-local-gateway.istio-system.svc.cluster.local``); until
  PredictorReady is True, IngressReady False/Unknown "Predictor ingress not created"; then
  ``url`` = the predictor URL without ``-predictor`` with ``urlScheme`` https (RHOAI),
  ``address.url`` ``http://<isvc>.<ns>.svc.cluster.local`` (disableIstioVirtualHost false),
  IngressReady True.
- pkg/apis/serving/v1beta1/inference_service_status.go: ``PropagateStatus`` (PredictorReady,
  PredictorRouteReady, PredictorConfigurationReady copied from the Knative Service's Ready,
  RoutesReady, ConfigurationsReady; ``components.predictor`` revisions and traffic; url and
  address only while that Service is Ready), ``PropagateCrossComponentStatus`` (RoutesReady,
  LatestDeploymentReady, reason "<cond> not ready"), the living condition set (PredictorReady,
  IngressReady -> Ready, marked as knative.dev/pkg apis/condition_set.go marks them: severity
  Info for the others, sorted by type), and ``PropagateModelStatus`` (no pods: FailedToLoad
  when a Knative condition is False, else Pending; ISVC Ready with latestCreated ==
  latestReady: Loaded with ``copies``; kserve-container terminated with Error or in
  CrashLoopBackOff: FailedToLoad/ModelLoadFailed; else Pending; ``activeModelState`` becomes
  only Loaded; transitionStatus InProgress/UpToDate/BlockedByFailedLoad).

The Knative side, as this stand-in plays it (no Knative runs in the sandbox): the Revision is
ready when its Deployment is Available, a pod is Ready, and the model server answers: the
queue-proxy's readiness probe of the user container, which kwok cannot run, is made here as a
GET of the predictor's in-cluster URL + ``/v1/models`` (reached through
``Context.in_cluster_url``), which must list at least one model (any model, as the real probe
asks only that vLLM answers: the name it serves comes from its ``--served-model-name``, which
the data-plane kubelet gives the model server from this pod's arguments). A kserve-container that
crash-loops or exits with Error, or a Deployment past its progress deadline, fails the
Revision (ConfigurationsReady False/RevisionFailed, RoutesReady False/RevisionMissing);
otherwise it is still deploying (both Unknown). ``latestReadyRevisionName`` once set stays set,
and the Route's traffic (100% to the latest revision) appears once the Revision is ready, as
Knative keeps them.

Where it knowingly differs:
- No Knative Service, Configuration, Revision, Route, VirtualService or PodAutoscaler objects
  (their CRDs are not in the sandbox): their status is computed here, and the Deployment is
  owned by the ISVC directly.
- Knative's own Service ``<isvc>-predictor`` is an ExternalName to the mesh gateway (its
  private ``-00001`` Services select the pods on the queue-proxy's ports); here
  ``<isvc>-predictor`` is a ClusterIP Service, port 80 -> 8080, selecting the revision's pods,
  so the sandbox's port-forwards reach the model process behind them.
- Knative's reasons and messages while deploying are ours in wording ("Deploying"); the
  RevisionMissing messages follow Knative's from memory (not verified in its source).
- The ServingRuntime is not resolved (no ServingRuntime CRD here): ``vllm-runtime``'s image and
  arguments are RHOAI 2.25's vLLM template's (``--served-model-name={{.Name}}``, so the model
  is served under the InferenceService's name; the ISVC's own ``args`` follow and a later
  ``--served-model-name`` wins, as in vLLM's argument parser); no storage-initializer or
  modelcar (``oci://`` storage) container.
- Of Knative's revision annotations only ``serving.knative.dev/progress-deadline`` is read (the
  Deployment's ``progressDeadlineSeconds``, default 600 s); no autoscaling (one replica, or
  ``minReplicas``).
- ``lastTransitionTime`` moves only when a condition's status, reason or message changes.
"""

from __future__ import annotations

import copy
from typing import Any

from stagecheck.kube.client import JsonObject
from stagecheck.sandbox.standins.base import (
    Context,
    Reconciler,
    apply_owned,
    find_condition,
    now,
    write_status,
)
from stagecheck.sandbox.standins.calls import Calls
from stagecheck.sandbox.standins.routes import APPS_DOMAIN

KIND = "InferenceService.serving.kserve.io"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
DEFAULT_MODE = "Serverless"  # RHOAI's inferenceservice-config
URL_SCHEME = "https"  # RHOAI's ingress config
LOCAL_GATEWAY = "kserve-local-gateway.istio-system.svc.cluster.local"
DISALLOWED_ANNOTATIONS = (
    "autoscaling.knative.dev/min-scale",
    "autoscaling.knative.dev/max-scale",
    "internal.serving.kserve.io/storage-initializer-sourceuri",
    "kubectl.kubernetes.io/last-applied-configuration",
)
RUNTIME_IMAGES = {"vllm-runtime": "quay.io/modh/vllm:rhoai-2.25"}
# The ServingRuntime's container arguments: RHOAI 2.25's vLLM templates (odh-model-controller
# config/runtimes/vllm-cuda-template.yaml, vllm-cpu-template.yaml); ``{{.Name}}`` is the
# InferenceService's name (kserve utils.go ``ReplacePlaceholders``), the ISVC's own arguments
# are appended after them.
RUNTIME_ARGS = {
    "vllm-runtime": ("--port=8080", "--model=/mnt/models", "--served-model-name={{.Name}}"),
}
QUEUE_PROXY_IMAGE = "registry.redhat.io/openshift-serverless-1/serving-queue-rhel8:1.35"
USER_PORT = 8080
CALL_TIMEOUT_S = 5.0
# Knative's per-revision progress deadline (serving.knative.dev/progress-deadline, a duration)
PROGRESS_DEADLINE = "serving.knative.dev/progress-deadline"
DEPENDENTS = ("PredictorReady", "IngressReady")  # the ISVC's living condition set -> Ready


class KServeStandin(Reconciler):
    name = "kserve-knative-standin"

    def __init__(self) -> None:
        self.calls = Calls()

    def reconcile(self, ctx: Context) -> None:
        if ctx.served(KIND) is None:
            return
        for isvc in ctx.items(KIND):
            meta = isvc["metadata"]
            if meta.get("deletionTimestamp") or mode(isvc) != "Serverless":
                continue  # RawDeployment and ModelMesh are not the stage's modes
            name, namespace = meta["name"], meta["namespace"]
            deployment = apply_owned(ctx, self.name, isvc, predictor_deployment(isvc))
            apply_owned(ctx, self.name, isvc, predictor_service(name, namespace))
            apply_owned(ctx, self.name, isvc, external_service(name, namespace))
            pods = _pods(ctx, namespace, revision_name(name))
            ksvc = self._knative_status(ctx, isvc, deployment, pods)
            write_status(ctx, isvc, isvc_status(isvc, ksvc, pods))

    def _knative_status(
        self, ctx: Context, isvc: JsonObject, deployment: JsonObject, pods: list[JsonObject]
    ) -> JsonObject:
        name, namespace = isvc["metadata"]["name"], isvc["metadata"]["namespace"]
        revision, predictor = revision_name(name), f"{name}-predictor"
        failure = _revision_failure(deployment, pods)
        ready_pod = any(_pod_ready(p) for p in pods)
        available = (find_condition(deployment, "Available") or {}).get("status") == "True"
        waiting = f'Configuration "{predictor}" is waiting for a Revision to become ready.'
        if failure is not None:
            configuration = _cond("False", "RevisionFailed", failure)
            routes = _cond(
                "False", "RevisionMissing", f'Configuration "{predictor}" does not have any '
                "ready Revision.",
            )  # fmt: skip
        elif not (available and ready_pod):
            message = f'Revision "{revision}" is not ready: its Deployment has no ready pod yet.'
            configuration = _cond("Unknown", "Deploying", message)
            routes = _cond("Unknown", "RevisionMissing", waiting)
        else:
            models_url = f"http://{predictor}.{namespace}.svc.cluster.local/v1/models"
            answer = self.calls.get(ctx, models_url, CALL_TIMEOUT_S)
            listed = (
                answer.body.get("data") if answer.ok and isinstance(answer.body, dict) else None
            )
            if isinstance(listed, list) and listed:
                configuration, routes = _cond("True"), _cond("True")
            else:
                why = answer.error or "it lists no model"
                message = (
                    f'Revision "{revision}" is not ready: the queue-proxy\'s readiness probe of '
                    f"the model server failed ({models_url}: {why})."
                )
                configuration = _cond("Unknown", "Deploying", message)
                routes = _cond("Unknown", "RevisionMissing", waiting)
        ready = _all_of([configuration, routes])
        previous = ((isvc.get("status") or {}).get("components") or {}).get("predictor") or {}
        latest_ready = revision if configuration["status"] == "True" else ""
        latest_ready = latest_ready or previous.get("latestReadyRevision") or ""
        status: JsonObject = {
            "observedGeneration": isvc["metadata"].get("generation", 1),
            "latestCreatedRevisionName": revision,
            "latestReadyRevisionName": latest_ready,
            "conditions": {
                "Ready": ready,
                "ConfigurationsReady": configuration,
                "RoutesReady": routes,
            },
            "url": f"https://{predictor}-{namespace}.{APPS_DOMAIN}",
            "address": {"url": f"http://{predictor}.{namespace}.svc.cluster.local"},
        }
        if latest_ready:
            status["traffic"] = [
                {"revisionName": latest_ready, "latestRevision": True, "percent": 100}
            ]
        return status


def mode(isvc: JsonObject) -> str:
    annotations = isvc["metadata"].get("annotations") or {}
    return str(annotations.get(MODE_ANNOTATION) or DEFAULT_MODE)


def revision_name(isvc_name: str) -> str:
    return f"{isvc_name}-predictor-00001"


# -- the objects ----------------------------------------------------------------------------
def pod_metadata(isvc: JsonObject) -> JsonObject:
    """predictor.go ``buildObjectMeta`` with Knative's revision labels on top."""
    meta, predictor = isvc["metadata"], (isvc.get("spec") or {}).get("predictor") or {}
    name = meta["name"]
    revision = revision_name(name)
    labels = {
        **(meta.get("labels") or {}),
        **(predictor.get("labels") or {}),
        "serving.kserve.io/inferenceservice": name,
        "component": "predictor",
        # Knative's revision labels on the pods it runs
        "app": revision,
        "serving.knative.dev/service": f"{name}-predictor",
        "serving.knative.dev/configuration": f"{name}-predictor",
        "serving.knative.dev/revision": revision,
    }
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k not in DISALLOWED_ANNOTATIONS
    }
    annotations.update(predictor.get("annotations") or {})
    return {"labels": labels, "annotations": annotations}


def predictor_deployment(isvc: JsonObject) -> JsonObject:
    meta = isvc["metadata"]
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    model = predictor.get("model") or {}
    custom = (predictor.get("containers") or [{}])[0]
    image = custom.get("image") or RUNTIME_IMAGES.get(model.get("runtime") or "", "")
    if not image:
        image = RUNTIME_IMAGES["vllm-runtime"]
    revision = revision_name(meta["name"])
    template = pod_metadata(isvc)
    user: dict[str, Any] = {
        "name": "kserve-container",
        "image": image,
        "ports": [{"name": "user-port", "containerPort": USER_PORT, "protocol": "TCP"}],
    }
    for key in ("command", "env", "resources"):
        value = custom.get(key) or model.get(key)
        if value:
            user[key] = value
    runtime = RUNTIME_ARGS.get(model.get("runtime") or "vllm-runtime", ())
    args = [a.replace("{{.Name}}", meta["name"]) for a in runtime]
    args += [str(a) for a in custom.get("args") or model.get("args") or []]
    if args:
        user["args"] = args
    queue = {
        "name": "queue-proxy",
        "image": QUEUE_PROXY_IMAGE,
        "ports": [
            {"name": "http-queueadm", "containerPort": 8022, "protocol": "TCP"},
            {"name": "http-autometric", "containerPort": 9090, "protocol": "TCP"},
            {"name": "http-usermetric", "containerPort": 9091, "protocol": "TCP"},
            {"name": "queue-port", "containerPort": 8012, "protocol": "TCP"},
        ],
        "env": [
            {"name": "SERVING_REVISION", "value": revision},
            {"name": "USER_PORT", "value": str(USER_PORT)},
        ],
    }
    pod: dict[str, Any] = {"containers": [user, queue]}
    if predictor.get("serviceAccountName"):
        pod["serviceAccountName"] = predictor["serviceAccountName"]
    replicas = predictor.get("minReplicas")
    deadline = _seconds((meta.get("annotations") or {}).get(PROGRESS_DEADLINE) or "")
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": f"{revision}-deployment",
            "namespace": meta["namespace"],
            "labels": template["labels"],
        },
        "spec": {
            "replicas": 1 if replicas is None else int(replicas),
            "selector": {"matchLabels": {"serving.knative.dev/revision": revision}},
            "progressDeadlineSeconds": deadline or 600,
            "template": {"metadata": template, "spec": pod},
        },
    }


def _seconds(duration: str) -> int | None:
    """``30s``, ``10m``, ``1h`` as seconds (None when absent or not a duration)."""
    units = {"s": 1, "m": 60, "h": 3600}
    text = duration.strip()
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        return None
    return int(text[:-1]) * units[text[-1]]


def predictor_service(name: str, namespace: str) -> JsonObject:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": f"{name}-predictor",
            "namespace": namespace,
            "labels": {"serving.kserve.io/inferenceservice": name, "component": "predictor"},
        },
        "spec": {
            "selector": {"serving.knative.dev/revision": revision_name(name)},
            "ports": [{"name": "http", "port": 80, "targetPort": USER_PORT, "protocol": "TCP"}],
        },
    }


def external_service(name: str, namespace: str) -> JsonObject:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": "ExternalName", "externalName": LOCAL_GATEWAY, "sessionAffinity": "None"},
    }


def _pods(ctx: Context, namespace: str, revision: str) -> list[JsonObject]:
    resource = ctx.served("Pod")
    if resource is None:
        return []
    found = ctx.kube.get(
        resource.collection_path(namespace),
        {"labelSelector": f"serving.knative.dev/revision={revision}"},
    )
    return sorted(found.get("items") or [], key=lambda p: p["metadata"]["name"])


def _pod_ready(pod: JsonObject) -> bool:
    return (find_condition(pod, "Ready") or {}).get("status") == "True"


def _user_container(pod: JsonObject) -> JsonObject | None:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return next((s for s in statuses if s.get("name") == "kserve-container"), None)


def _crashed(state: JsonObject) -> tuple[str, JsonObject] | None:
    """("Error", terminated) or ("CrashLoopBackOff", last terminated) for a failed container."""
    terminated = (state.get("state") or {}).get("terminated") or {}
    if terminated.get("reason") == "Error":
        return "Error", terminated
    waiting = (state.get("state") or {}).get("waiting") or {}
    if waiting.get("reason") == "CrashLoopBackOff":
        return "CrashLoopBackOff", (state.get("lastState") or {}).get("terminated") or {}
    return None


def _revision_failure(deployment: JsonObject, pods: list[JsonObject]) -> str | None:
    """Why Knative would call the revision failed, or None."""
    for pod in pods:
        user = _user_container(pod)
        crashed = _crashed(user) if user else None
        if crashed is not None:
            last = crashed[1]
            return (
                f'Revision "{pod["metadata"]["labels"].get("serving.knative.dev/revision")}" '
                f"failed with message: Container failed with: {last.get('message') or ''} "
                f"(exit code {last.get('exitCode', 0)})."
            )
    progressing = find_condition(deployment, "Progressing") or {}
    if progressing.get("status") == "False" and progressing.get("reason") == (
        "ProgressDeadlineExceeded"
    ):
        return f"Revision failed with message: {progressing.get('message') or ''}"
    return None


# -- conditions as knative.dev/pkg marks them -----------------------------------------------
def _cond(status: str, reason: str = "", message: str = "") -> JsonObject:
    made: JsonObject = {"status": status}
    if reason:
        made["reason"] = reason
    if message:
        made["message"] = message
    return made


def _all_of(conditions: list[JsonObject]) -> JsonObject:
    """A Knative Service's Ready over its ConfigurationsReady and RoutesReady."""
    for wanted in ("False", "Unknown"):
        found = next((c for c in conditions if c["status"] == wanted), None)
        if found is not None:
            return dict(found)
    return _cond("True")


class _Conditions:
    """A living condition set (happy ``Ready``, dependents PredictorReady and IngressReady),
    marked as knative.dev/pkg apis/condition_set.go marks it."""

    def __init__(self, previous: list[JsonObject]) -> None:
        self.previous = {c["type"]: c for c in previous if c.get("type")}
        self.current: dict[str, JsonObject] = {t: dict(c) for t, c in self.previous.items()}

    def initialize(self) -> None:
        happy = self.current.get("Ready")
        if happy is None:
            self._set("Ready", "Unknown")
            happy = self.current["Ready"]
        for dependent in DEPENDENTS:
            if dependent not in self.current:
                self._set(dependent, "True" if happy["status"] == "True" else "Unknown")

    def get(self, type_: str) -> JsonObject | None:
        return self.current.get(type_)

    def status(self, type_: str) -> str:
        return str((self.current.get(type_) or {}).get("status") or "Unknown")

    def set_from(self, type_: str, source: JsonObject | None) -> None:
        """InferenceServiceStatus.SetCondition: nil is ignored; else mark by its status."""
        if source is None:
            return
        if source["status"] == "True":
            self.mark_true(type_)
        elif source["status"] == "False":
            self.mark_false(type_, source.get("reason", ""), source.get("message", ""))
        else:
            self.mark_unknown(type_, source.get("reason", ""), source.get("message", ""))

    def mark_true(self, type_: str) -> None:
        self._set(type_, "True")
        if all(self.status(d) == "True" for d in DEPENDENTS):
            self._set("Ready", "True")

    def mark_false(self, type_: str, reason: str, message: str) -> None:
        self._set(type_, "False", reason, message)
        if type_ in DEPENDENTS:
            self._set("Ready", "False", reason, message)

    def mark_unknown(self, type_: str, reason: str, message: str) -> None:
        self._set(type_, "Unknown", reason, message)
        for dependent in DEPENDENTS:
            if self.status(dependent) == "False":
                if self.status("Ready") != "False":
                    self._set("Ready", "False", reason, message)
                return
        if type_ in DEPENDENTS:
            self._set("Ready", "Unknown", reason, message)

    def _set(self, type_: str, status: str, reason: str = "", message: str = "") -> None:
        made: JsonObject = {"type": type_, "status": status}
        if type_ != "Ready" and type_ not in DEPENDENTS:
            made["severity"] = "Info"
        if reason:
            made["reason"] = reason
        if message:
            made["message"] = message
        old = self.previous.get(type_)
        same = old is not None and all(
            old.get(k) == made.get(k) for k in ("status", "reason", "message", "severity")
        )
        made["lastTransitionTime"] = old["lastTransitionTime"] if same and old else now()
        self.current[type_] = made

    def listed(self) -> list[JsonObject]:
        return [self.current[t] for t in sorted(self.current)]


# -- the status -----------------------------------------------------------------------------
def isvc_status(isvc: JsonObject, ksvc: JsonObject, pods: list[JsonObject]) -> JsonObject:
    before = isvc.get("status") or {}
    status: dict[str, Any] = copy.deepcopy(before)
    marks = _Conditions(list(before.get("conditions") or []))
    marks.initialize()
    name, namespace = isvc["metadata"]["name"], isvc["metadata"]["namespace"]

    # PropagateStatus(predictor, ksvc status)
    components = status.setdefault("components", {})
    spec = dict(components.get("predictor") or {})
    spec["latestCreatedRevision"] = ksvc["latestCreatedRevisionName"]
    latest_ready = ksvc["latestReadyRevisionName"]
    for traffic in ksvc.get("traffic") or []:
        rolled_out = (
            traffic["revisionName"] == latest_ready
            and traffic.get("latestRevision")
            and spec.get("latestRolledoutRevision") != latest_ready
            and traffic.get("percent") == 100
        )
        if rolled_out:  # the last revision fully rolled out; rollbacks are not modelled
            if spec.get("latestRolledoutRevision"):
                spec["previousRolledoutRevision"] = spec["latestRolledoutRevision"]
            spec["latestRolledoutRevision"] = latest_ready
    if ksvc["latestReadyRevisionName"]:
        spec["latestReadyRevision"] = ksvc["latestReadyRevisionName"]
    conditions = ksvc["conditions"]
    if conditions["Ready"]["status"] == "True":
        spec["address"] = ksvc["address"]
        spec["url"] = ksvc["url"]
    marks.set_from("PredictorReady", conditions["Ready"])
    marks.set_from("PredictorRouteReady", conditions["RoutesReady"])
    if ksvc.get("traffic"):
        spec["traffic"] = ksvc["traffic"]
    else:
        spec.pop("traffic", None)
    marks.set_from("PredictorConfigurationReady", conditions["ConfigurationsReady"])
    components["predictor"] = spec
    status["observedGeneration"] = ksvc["observedGeneration"]

    # PropagateCrossComponentStatus(RoutesReady, LatestDeploymentReady)
    for aggregate, source in (
        ("RoutesReady", "PredictorRouteReady"),
        ("LatestDeploymentReady", "PredictorConfigurationReady"),
    ):
        value = marks.status(source)
        if value == "True":
            marks.set_from(aggregate, _cond("True"))
        else:
            marks.set_from(aggregate, _cond(value, f"{source} not ready"))

    # The predictor's reconcile ends with PropagateModelStatus, before the ingress reconciler
    # runs: Ready is still last pass's there (Loaded comes one pass after Ready).
    _model_status(status, marks, spec, pods, ksvc)

    # The ingress reconciler (Istio VirtualService, disableIstioVirtualHost false)
    if marks.status("PredictorReady") != "True":
        unknown = marks.status("PredictorReady") == "Unknown"
        marks.set_from(
            "IngressReady",
            _cond("Unknown" if unknown else "False", "Predictor ingress not created"),
        )
    else:
        url = str(spec["url"]).replace("-predictor", "", 1)
        status["url"] = URL_SCHEME + url[url.index(":") :]
        status["address"] = {"url": f"http://{name}.{namespace}.svc.cluster.local"}
        marks.set_from("IngressReady", _cond("True"))

    status["conditions"] = marks.listed()
    status["deploymentMode"] = mode(isvc)
    return status


def _model_status(
    status: dict[str, Any],
    marks: _Conditions,
    spec: JsonObject,
    pods: list[JsonObject],
    ksvc: JsonObject,
) -> None:
    """PropagateModelStatus (Serverless: pods of the latest created revision, pods[0] read)."""
    model = status.setdefault("modelStatus", {})
    model.setdefault("transitionStatus", "")

    def update(state: str, info: JsonObject | None = None) -> None:
        states = model.setdefault("states", {"activeModelState": ""})
        states.setdefault("activeModelState", "")
        states["targetModelState"] = state
        if state in ("Pending", "Loading"):
            model["transitionStatus"] = "InProgress"
        elif state == "Loaded":
            model["transitionStatus"] = "UpToDate"
            model["copies"] = {"failedCopies": 0, "totalCopies": len(pods)}
            states["activeModelState"] = "Loaded"
        elif state == "FailedToLoad":
            model["transitionStatus"] = "BlockedByFailedLoad"
        if info is not None:
            model["lastFailureInfo"] = info

    if not pods:
        if any(c["status"] == "False" for c in ksvc["conditions"].values()):
            update("FailedToLoad")
        else:
            update("Pending")
        return
    if marks.status("Ready") == "True" and spec.get("latestCreatedRevision") == spec.get(
        "latestReadyRevision"
    ):
        update("Loaded")
        return
    user = _user_container(pods[0])
    if user is None:
        return
    crashed = _crashed(user)
    if crashed is None:
        update("Pending")
        return
    last = crashed[1]
    info: JsonObject = {"reason": "ModelLoadFailed"}
    if last.get("message"):
        info["message"] = last["message"]
    if last.get("exitCode"):
        info["exitCode"] = int(last["exitCode"])
    update("FailedToLoad", info)
