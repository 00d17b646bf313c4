"""What "ready" means, kind by kind: the rule that ``is ready`` and ``applied and ready`` apply,
named in the step's expectation so a reader knows what was judged.

The rules come from the kinds' own API types and controllers: a Deployment is available
(its Available condition, replicas ready: apps/v1), a PersistentVolumeClaim is Bound
(core/v1 ClaimBound, set by kube-controller-manager's binder), a Route is admitted by a
router (openshift/api route/v1 ``status.ingress[].conditions[Admitted]``), an OLM
ClusterServiceVersion is in phase Succeeded (operator-framework/api
ClusterServiceVersionPhase), a Job is Complete, a CRD Established, a Namespace Active.
Kinds that have no status by design (ConfigMap, Secret, Service, RBAC objects, a custom
resource whose CRD has no status subresource) are ready once they exist. Any other kind is
judged by its Ready condition, else by a phase that says ready; one with a status but neither
is not guessed at: the step says what to write instead. An object with no status yet is not
ready: its controller has not reported on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stagecheck.engine.checks import (
    condition,
    condition_is,
    conditions,
    describe_condition,
    docling_available,
    exists,
    phase_is,
    pod_is_ready,
    pod_summary,
)
from stagecheck.engine.outcome import Observation
from stagecheck.errors import SpecificationError
from stagecheck.kube.client import JsonObject
from stagecheck.kube.discovery import ResourceType

Judge = Callable[[JsonObject], Observation]
READY_PHASES = ("Ready", "Running", "Succeeded", "Active", "Bound", "Available")
# Kinds with no status of their own: present is ready.
WITHOUT_STATUS = frozenset(
    {
        "ConfigMap",
        "Secret",
        "Service",
        "ServiceAccount",
        "Endpoints",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
        "NetworkPolicy",
        "LimitRange",
        "ResourceQuota",
        "PodDisruptionBudget",
        "PriorityClass",
        "StorageClass",
    }
)


@dataclass(frozen=True)
class Rule:
    says: str  # "phase Bound", as the expectation reads: "ready (PersistentVolumeClaim: ...)"
    judge: Judge


def _phase(wanted: str, terminal: tuple[str, ...] = ("Failed",)) -> Judge:
    def judge(obj: JsonObject) -> Observation:
        seen = phase_is(obj, wanted)
        actual = (obj.get("status") or {}).get("phase")
        if not seen.ok and actual in terminal:
            return Observation(ok=False, actual=seen.actual, cause=seen.cause,
                               terminal=f"phase {actual}")  # fmt: skip
        return seen

    return judge


def _job(obj: JsonObject) -> Observation:
    if (failed := condition(obj, "Failed")) and failed.get("status") == "True":
        return Observation(ok=False, actual=describe_condition(failed), terminal="Job failed")
    return condition_is(obj, "Complete", "True")


def _replicas(obj: JsonObject) -> Observation:
    want = int((obj.get("spec") or {}).get("replicas", 1))
    have = int((obj.get("status") or {}).get("readyReplicas", 0))
    return Observation(ok=have == want, actual=f"{have}/{want} replicas ready")


def _daemons(obj: JsonObject) -> Observation:
    status = obj.get("status") or {}
    want, have = int(status.get("desiredNumberScheduled", 0)), int(status.get("numberReady", 0))
    return Observation(ok=want > 0 and have == want, actual=f"{have}/{want} pods ready")


def _pod(obj: JsonObject) -> Observation:
    summary, terminal = pod_summary(obj)
    return Observation(ok=pod_is_ready(obj), actual=summary, terminal=terminal)


def route_admitted(obj: JsonObject) -> Observation:
    """Admitted by at least one router; otherwise each router's verdict."""
    ingresses = (obj.get("status") or {}).get("ingress") or []
    verdicts = []
    for ingress in ingresses:
        admitted: JsonObject = next(
            (c for c in ingress.get("conditions") or [] if c.get("type") == "Admitted"), {}
        )
        router = ingress.get("routerName") or "(unnamed)"
        if admitted.get("status") == "True":
            return Observation.passed(f"admitted by router {router} as {ingress.get('host')}")
        said = f"Admitted={admitted.get('status', '?')}"
        if admitted.get("reason"):
            said += f" ({admitted['reason']}: {admitted.get('message', '')})".replace(": )", ")")
        verdicts.append(f"router {router}: {said}")
    if not verdicts:
        return Observation(ok=False, actual="no router has admitted it (status.ingress is empty)",
                           cause="no router serves its host yet; is the router running, does "
                           "the route's shard select it?")  # fmt: skip
    return Observation(ok=False, actual="; ".join(verdicts))


RULES: dict[str, Rule] = {
    "PersistentVolumeClaim": Rule("phase Bound", _phase("Bound", ("Lost",))),
    "Route": Rule("admitted by a router", route_admitted),
    "ClusterServiceVersion": Rule("phase Succeeded", _phase("Succeeded")),
    "Namespace": Rule("phase Active", _phase("Active", ("Terminating",))),
    "Job": Rule("condition Complete=True", _job),
    "CustomResourceDefinition": Rule(
        "condition Established=True", lambda o: condition_is(o, "Established", "True")
    ),
    "StatefulSet": Rule("every replica ready", _replicas),
    "ReplicaSet": Rule("every replica ready", _replicas),
    "DaemonSet": Rule("every scheduled pod ready", _daemons),
    "Pod": Rule("condition Ready=True", _pod),
    # The docling-operator writes no Ready and no phase (internal/reconcilers/status.go).
    "DoclingServe": Rule("condition DeploymentAvailable=True", docling_available),
}
PRESENT = "present (it has no status of its own)"
BY_STATUS = f"its Ready condition True, else a phase of {', '.join(READY_PHASES)}"


def rule_for(resource: ResourceType) -> Rule:
    """The rule for a kind (Deployments are judged with their pods by the caller)."""
    if resource.kind in RULES:
        return RULES[resource.kind]
    if resource.kind in WITHOUT_STATUS or not resource.has_status:
        return Rule(PRESENT, exists)
    return Rule(BY_STATUS, _by_status)


def judge(rule: Rule, obj: JsonObject | None) -> Observation:
    return exists(None) if obj is None else rule.judge(obj)


def _by_status(obj: JsonObject) -> Observation:
    status = obj.get("status") or {}
    if condition(obj, "Ready") is not None:
        return condition_is(obj, "Ready", "True")
    if status.get("phase"):
        phase = status["phase"]
        if phase in READY_PHASES:
            return Observation.passed(f"phase {phase}")
        return phase_is(obj, "Ready")
    if not status:
        return Observation(ok=False, actual="no status yet",
                           cause="its controller (operator) has not reported on it: is it "
                           "running, and does it watch this namespace?")  # fmt: skip
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    present = [describe_condition(c) for c in conditions(obj)]
    fields = sorted(k for k in status if k != "conditions")
    has = [f"conditions {', '.join(present)}"] if present else []
    has += [f"fields {', '.join(fields)}"] if fields else []
    raise SpecificationError(
        f"{obj.get('kind')} {where}{meta.get('name')} reports neither a Ready condition nor a "
        f"phase (its status has {'; '.join(has)}), so 'is ready' cannot judge it: say what "
        'ready means for it, with \'has condition "<type>" with status "True"\' or '
        "'matches:'"
    )
