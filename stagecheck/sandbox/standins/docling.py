"""A stand-in for the docling-operator: NOT the docling-operator.

It reconciles ``DoclingServe`` (docling.github.io/v1alpha1) by the rules of
docling-project/docling-operator @bf3d436 (internal/controller/doclingserve_controller.go and
internal/reconcilers/*.go), in the operator's order:

- ServiceAccount ``docling-serve`` (service_account.go), labels ``app=docling-serve``,
  ``doclingserve_cr=<n>`` (labels.go), owned by the DoclingServe.
- Deployment ``<n>-deployment`` (deployment.go): selector and pod labels as above, replicas =
  ``spec.apiServer.instances``, service account ``docling-serve``, one container
  ``docling-serve`` (``docling-serve run``, image ``spec.apiServer.image``, port 5001 ``http``,
  liveness and readiness GET ``/health`` on ``http``), env
  ``DOCLING_SERVE_ENG_LOC_NUM_WORKERS`` for ``engine.local``, ``DOCLING_SERVE_ENG_KFP_ENDPOINT``
  and ``DOCLING_SERVE_ENG_KIND=kfp`` for ``engine.kfp``, ``DOCLING_SERVE_ENABLE_UI`` with
  ``enableUI``, ``DOCLING_SERVER_ARTIFACTS_PATH``; an emptyDir ``docling-model-cache`` (16G)
  mounted read-only at ``/opt/docling/models``. No sidecar annotation: the operator writes none.
- Service ``<n>-service`` (service.go): selector = the labels, port ``http`` 5001 -> 5001.
- Route ``<n>-route`` (route.go): only when ``spec.route.enabled``; path ``/``, to
  ``<n>-service``, targetPort ``http``, TLS edge. Otherwise it is deleted.
- Status (status.go), every pass, written whole (``Status().Update``): ``observedGeneration``
  = the DoclingServe's generation; conditions merged as ``meta.SetStatusCondition`` does (kept
  in place by type, appended when new, never removed; ``lastTransitionTime`` moves only when
  the status changes):
  ``DeploymentCreated`` (T, or U/``DeploymentStatusError`` with the get error),
  ``DeploymentAvailable`` (a copy of the Deployment's ``Available``), a copy of the
  Deployment's last condition under its own type, ``ServiceCreated`` (T, or
  U/``ServiceStatusError``), ``RouteCreated`` (T/``RouteDisabled`` when ``route.enabled`` is
  false, T/``RouteCreated`` when the Route is found, U/``RouteStatusError`` when it is not -
  also when ``spec.route`` is omitted), and a copy of the Route's ``status.ingress[0]`` last
  condition (``Admitted``, written by the route stand-in; an empty reason becomes
  ``Unknown``). There is **no** ``Ready`` condition and no phase.

Where it knowingly differs: the one ServiceAccount ``docling-serve`` of a namespace stays with
the first DoclingServe that made it (the operator's ``SetControllerReference`` refuses a second
owner, but it still rewrites the ``doclingserve_cr`` label at each reconcile of another
DoclingServe; here a settled world must not flap); no ``artifactsVolume`` (PVC and
model-cache Job are not made; a DoclingServe asking for one is reconciled without it), no
``configMapName`` envFrom, no ``resources``; the get errors' wording follows client-go's
NotFound text; the real operator reads through its informer cache, so it may first report a
just-created object as missing.
"""

from __future__ import annotations

from typing import Any

from stagecheck.kube.client import JsonObject
from stagecheck.sandbox.standins.base import (
    Context,
    Reconciler,
    apply_owned,
    delete_owned,
    now,
    write_status,
)

KIND = "DoclingServe.docling.github.io"
SERVICE_ACCOUNT = "docling-serve"
MODEL_CACHE = "docling-model-cache"
ARTIFACTS_PATH = "/opt/docling/models"
PORT = 5001


def labels(name: str) -> dict[str, str]:
    return {"app": "docling-serve", "doclingserve_cr": name}


class DoclingOperatorStandin(Reconciler):
    name = "docling-operator-standin"

    def reconcile(self, ctx: Context) -> None:
        if ctx.served(KIND) is None:
            return
        for serve in ctx.items(KIND):
            if serve["metadata"].get("deletionTimestamp"):
                continue
            self._reconcile_one(ctx, serve)

    def _reconcile_one(self, ctx: Context, serve: JsonObject) -> None:
        meta = serve["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        spec = serve.get("spec") or {}
        account = ctx.get("ServiceAccount", SERVICE_ACCOUNT, namespace)
        if account is None or _controlled_by(account, serve):
            apply_owned(ctx, self.name, serve, _service_account(name, namespace))
        apply_owned(ctx, self.name, serve, _deployment(name, namespace, spec))
        apply_owned(ctx, self.name, serve, _service(name, namespace))
        route = spec.get("route")
        if route is not None and route.get("enabled"):
            if ctx.served("Route.route.openshift.io") is not None:
                apply_owned(ctx, self.name, serve, _route(name, namespace))
        else:
            delete_owned(ctx, "Route.route.openshift.io", f"{name}-route", namespace)
        write_status(ctx, serve, _status(ctx, serve))


def _controlled_by(obj: JsonObject, owner: JsonObject) -> bool:
    """No controller yet, or ``owner`` is it (SetControllerReference refuses a second)."""
    controllers = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")]
    return not controllers or controllers[0].get("uid") == owner["metadata"]["uid"]


def _service_account(name: str, namespace: str) -> JsonObject:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace, "labels": labels(name)},
    }


def _probe(initial_delay: int, timeout: int, period: int, failures: int) -> JsonObject:
    return {
        "httpGet": {"path": "/health", "port": "http", "scheme": "HTTP"},
        "initialDelaySeconds": initial_delay,
        "timeoutSeconds": timeout,
        "periodSeconds": period,
        "successThreshold": 1,
        "failureThreshold": failures,
    }


def _deployment(name: str, namespace: str, spec: JsonObject) -> JsonObject:
    api = spec.get("apiServer") or {}
    engine = spec.get("engine") or {}
    env: list[JsonObject] = []
    if api.get("enableUI"):
        env.append({"name": "DOCLING_SERVE_ENABLE_UI", "value": "true"})
    if engine.get("local") is not None:
        workers = (engine.get("local") or {}).get("numWorkers", 2)
        env.append({"name": "DOCLING_SERVE_ENG_LOC_NUM_WORKERS", "value": str(workers)})
    if engine.get("kfp") is not None:
        env.append({"name": "DOCLING_SERVE_ENG_KFP_ENDPOINT", "value": engine["kfp"]["endpoint"]})
        env.append({"name": "DOCLING_SERVE_ENG_KIND", "value": "kfp"})
    env.append({"name": "DOCLING_SERVER_ARTIFACTS_PATH", "value": ARTIFACTS_PATH})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{name}-deployment", "namespace": namespace},
        "spec": {
            "replicas": int(api.get("instances", 1)),
            "selector": {"matchLabels": labels(name)},
            "template": {
                "metadata": {"labels": labels(name)},
                "spec": {
                    "serviceAccountName": SERVICE_ACCOUNT,
                    "containers": [
                        {
                            "name": "docling-serve",
                            "image": api.get("image")
                            or "quay.io/docling-project/docling-serve:latest",
                            "command": ["docling-serve", "run"],
                            "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
                            "imagePullPolicy": "IfNotPresent",
                            "livenessProbe": _probe(3, 4, 10, 5),
                            "readinessProbe": _probe(10, 2, 5, 3),
                            "env": env,
                            "volumeMounts": [
                                {"name": MODEL_CACHE, "readOnly": True, "mountPath": ARTIFACTS_PATH}
                            ],
                        }
                    ],
                    "volumes": [{"name": MODEL_CACHE, "emptyDir": {"sizeLimit": "16G"}}],
                },
            },
        },
    }


def _service(name: str, namespace: str) -> JsonObject:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{name}-service", "namespace": namespace, "labels": labels(name)},
        "spec": {
            "selector": labels(name),
            "ports": [{"name": "http", "port": PORT, "targetPort": PORT}],
        },
    }


def _route(name: str, namespace: str) -> JsonObject:
    return {
        "apiVersion": "route.openshift.io/v1",
        "kind": "Route",
        "metadata": {"name": f"{name}-route", "namespace": namespace, "labels": labels(name)},
        "spec": {
            "path": "/",
            "to": {"kind": "Service", "name": f"{name}-service"},
            "port": {"targetPort": "http"},
            "tls": {"termination": "edge"},
        },
    }


def _not_found(resource: str, name: str) -> str:
    """client-go's NotFound error text, as the operator puts it into the message."""
    return f'{resource} "{name}" not found'


def _status(ctx: Context, serve: JsonObject) -> JsonObject:
    meta = serve["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    spec = serve.get("spec") or {}
    conditions = [dict(c) for c in (serve.get("status") or {}).get("conditions") or []]

    def put(type_: str, status: str, reason: str, message: str, generation: int = 0) -> None:
        set_status_condition(conditions, type_, status, reason, message, generation)

    deployment = ctx.get("Deployment.apps", f"{name}-deployment", namespace)
    if deployment is None:
        message = _not_found("deployments.apps", f"{name}-deployment")
        put("DeploymentCreated", "Unknown", "DeploymentStatusError", message)
    else:
        generation = int(deployment["metadata"].get("generation") or 0)
        message = "The docling deployment was created successfully"
        put("DeploymentCreated", "True", "DeploymentCreated", message, generation)
        found = (deployment.get("status") or {}).get("conditions") or []
        for copied in found:
            if copied.get("type") == "Available":
                put("DeploymentAvailable", *_copied(copied), generation)
        if found:
            last = found[-1]
            put(last["type"], *_copied(last), generation)

    service = ctx.get("Service", f"{name}-service", namespace)
    if service is None:
        message = _not_found("services", f"{name}-service")
        put("ServiceCreated", "Unknown", "ServiceStatusError", message)
    else:
        generation = int(service["metadata"].get("generation") or 0)
        message = "The docling service was created successfully"
        put("ServiceCreated", "True", "ServiceCreated", message, generation)

    route_spec = spec.get("route")
    if route_spec is not None and not route_spec.get("enabled"):
        put("RouteCreated", "True", "RouteDisabled", "A docling route is disabled")
    else:
        route = ctx.get("Route.route.openshift.io", f"{name}-route", namespace)
        if route is None:
            message = _not_found("routes.route.openshift.io", f"{name}-route")
            put("RouteCreated", "Unknown", "RouteStatusError", message)
        else:
            generation = int(route["metadata"].get("generation") or 0)
            message = "A docling route was created successfully"
            put("RouteCreated", "True", "RouteCreated", message, generation)
            ingress = (route.get("status") or {}).get("ingress") or []
            if ingress and ingress[0].get("conditions"):
                last = ingress[0]["conditions"][-1]
                copied, reason, message = _copied(last)
                put(last["type"], copied, reason or "Unknown", message, generation)

    status: JsonObject = {"conditions": conditions}
    if meta.get("generation"):
        status["observedGeneration"] = int(meta["generation"])
    return status


def _copied(found: JsonObject) -> tuple[str, str, str]:
    return (str(found.get("status")), str(found.get("reason") or ""), found.get("message") or "")


def set_status_condition(
    conditions: list[dict[str, Any]],
    type_: str,
    status: str,
    reason: str,
    message: str,
    generation: int = 0,
) -> None:
    """apimachinery meta.SetStatusCondition: an existing condition of the type is updated in
    place (its lastTransitionTime moves only when its status changes); a new one is appended;
    none is removed."""
    made: dict[str, Any] = {"type": type_, "status": status}
    if generation:
        made["observedGeneration"] = generation
    made["lastTransitionTime"] = now()
    made["reason"] = reason
    made["message"] = message
    for index, old in enumerate(conditions):
        if old.get("type") == type_:
            if old.get("status") == status and old.get("lastTransitionTime"):
                made["lastTransitionTime"] = old["lastTransitionTime"]
            conditions[index] = made
            return
    conditions.append(made)
