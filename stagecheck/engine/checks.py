"""Checks: pure functions from what the cluster shows to an Observation.

They know Kubernetes semantics (conditions, deployment availability, pod readiness,
terminal states) and nothing about HTTP, waiting or pytest.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from stagecheck.engine.match import Mismatch, partial_mismatches
from stagecheck.engine.outcome import Observation, parse_time
from stagecheck.engine.versions import Version, parse_version
from stagecheck.kube.client import JsonObject
from stagecheck.redaction import redact_fields, sensitive_path

# Container waiting reasons after which waiting longer will not help.
TERMINAL_WAITING_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
# Condition reasons operators use to say a resource failed rather than is still progressing.
# A False condition saying a server refused the credentials it was given: the keys will not
# change by waiting (DSPO's ObjectStoreAvailable carries the S3 error text, controllers/storage.go).
CREDENTIALS_REFUSED = re.compile(
    r"SignatureDoesNotMatch|InvalidAccessKeyId|signature we calculated does not match|"
    r"Access Key Id you provided does not exist|AccessDenied|Access Denied",
    re.IGNORECASE,
)
TERMINAL_CONDITION_REASONS = (
    frozenset(
        {
            "ProgressDeadlineExceeded",
            "FailingToDeploy",
            "FailedCreate",
            "InstallFailed",
            "ReconcileFailed",
            "DeploymentFailed",
            "BackoffLimitExceeded",
        }
    )
    | TERMINAL_WAITING_REASONS
)
TERMINAL_PHASES = frozenset({"Failed"})
# Volumes Kubernetes always mounts read-only, whatever the mount says (since v1.10: the
# kubelet's atomic writer): their files come from the API, not from the container.
READ_ONLY_VOLUMES = ("configMap", "secret", "downwardAPI", "projected")
# How a volume's source is named in a message: its kind's word and the field with its name
VOLUME_SOURCES = {
    "configMap": ("ConfigMap", "name"),
    "secret": ("Secret", "secretName"),
    "persistentVolumeClaim": ("PersistentVolumeClaim", "claimName"),
}


# -- reading objects -------------------------------------------------------------------------
def conditions(obj: JsonObject) -> list[JsonObject]:
    found = obj.get("status", {}).get("conditions") or []
    return [c for c in found if isinstance(c, dict)]


def condition(obj: JsonObject, type_: str) -> JsonObject | None:
    return next((c for c in conditions(obj) if c.get("type") == type_), None)


def describe_condition(cond: JsonObject) -> str:
    text = f"{cond.get('type')}={cond.get('status')}"
    detail = ": ".join(str(cond[k]) for k in ("reason", "message") if cond.get(k))
    return f"{text} ({detail})" if detail else text


_MEMO_LIMIT = 50_000  # pods remembered per function; forgotten all at once past it


def per_version[R](judge: Callable[[JsonObject], R]) -> Callable[[JsonObject], R]:
    """Remember what ``judge`` said of an object at its resourceVersion: a wait re-checks all
    the pods it watches on every change, but only the pods that changed need judging again."""
    memo: dict[tuple[str, str], R] = {}

    @functools.wraps(judge)
    def judged(obj: JsonObject) -> R:
        meta = obj.get("metadata", {})
        uid, version = meta.get("uid"), meta.get("resourceVersion")
        if not uid or not version:  # not an object the API server returned: judge afresh
            return judge(obj)
        key = (str(uid), str(version))
        if key not in memo:
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            memo[key] = judge(obj)
        return memo[key]

    return judged


@per_version
def pod_summary(pod: JsonObject) -> tuple[str, str | None]:
    """One line on a pod's state, and the terminal reason if it will not recover."""
    name = pod.get("metadata", {}).get("name", "?")
    status = pod.get("status", {})
    phase = status.get("phase", "Unknown")
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return f"pod {name} is terminating", None
    for container in _container_statuses(status):
        waiting = container.get("state", {}).get("waiting")
        if waiting and waiting.get("reason"):
            reason = waiting["reason"]
            message = f": {waiting['message']}" if waiting.get("message") else ""
            line = f"pod {name}: container {container.get('name')} waiting: {reason}{message}"
            return line, reason if reason in TERMINAL_WAITING_REASONS else None
        terminated = container.get("state", {}).get("terminated")
        if terminated and phase not in ("Succeeded",) and terminated.get("exitCode"):
            line = (
                f"pod {name}: container {container.get('name')} terminated "
                f"({terminated.get('reason', 'Error')}, exit code {terminated['exitCode']})"
            )
            return line, None
    if phase in TERMINAL_PHASES:
        reason = status.get("reason") or "Failed"
        return f"pod {name} is {phase}: {reason} {status.get('message', '')}".rstrip(), reason
    scheduled = condition(pod, "PodScheduled")
    if scheduled and scheduled.get("status") == "False":
        return f"pod {name} is {phase}: not scheduled: {describe_condition(scheduled)}", None
    ready = condition(pod, "Ready")
    if ready and ready.get("status") == "True":
        return f"pod {name} is {phase} and Ready", None
    if ready:
        return f"pod {name} is {phase}, {describe_condition(ready)}", None
    if phase == "Pending" and not pod.get("spec", {}).get("nodeName"):
        return f"pod {name} is Pending and not scheduled yet", None
    return f"pod {name} is {phase}, not Ready", None


@per_version
def pod_is_ready(pod: JsonObject) -> bool:
    ready = condition(pod, "Ready")
    return bool(ready and ready.get("status") == "True") and not pod.get("metadata", {}).get(
        "deletionTimestamp"
    )


def container_names(pod: JsonObject) -> list[str]:
    """Containers that run beside the app: regular ones and native sidecars (restartable init)."""
    spec = pod.get("spec", {})
    names = [c.get("name", "") for c in spec.get("containers", [])]
    names += [
        c.get("name", "")
        for c in spec.get("initContainers", [])
        if c.get("restartPolicy") == "Always"
    ]
    return names


@dataclass(frozen=True)
class ReadOnlyMount:
    """A volume a container has mounted read-only: it cannot write under ``path``."""

    path: str  # the mount path
    volume: str
    source: str  # what the volume is: 'ConfigMap llamastack-config', 'emptyDir'
    index: int  # in the container's volumeMounts

    def covers(self, path: str) -> bool:
        return path == self.path or path.startswith(self.path.rstrip("/") + "/")


def read_only_mounts(pod: JsonObject, container: str) -> list[ReadOnlyMount]:
    """The container's mounts it cannot write through: a ConfigMap, Secret, downward API or
    projected volume, or any volume mounted ``readOnly: true``."""
    spec = pod.get("spec") or {}
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    found: JsonObject = next(
        (c for c in spec.get("containers") or [] if c.get("name") == container), {}
    )
    mounts = []
    for index, mount in enumerate(found.get("volumeMounts") or []):
        volume = volumes.get(mount.get("name")) or {}
        kind = next((k for k in volume if k != "name"), "unknown")
        if kind not in READ_ONLY_VOLUMES and not mount.get("readOnly"):
            continue
        word, field = VOLUME_SOURCES.get(kind, (kind, ""))
        named = (volume.get(kind) or {}).get(field) if field else None
        source = f"{word} {named}" if named else word
        mounts.append(
            ReadOnlyMount(str(mount.get("mountPath")), str(mount.get("name")), source, index)
        )
    return mounts


def _container_statuses(status: JsonObject) -> Iterable[JsonObject]:
    yield from status.get("initContainerStatuses") or []
    yield from status.get("containerStatuses") or []


def _created(obj: JsonObject) -> datetime | None:
    return parse_time(obj.get("metadata", {}).get("creationTimestamp"))


# -- checks ----------------------------------------------------------------------------------
NOT_FOUND = "not found"


def exists(obj: JsonObject | None) -> Observation:
    if obj is None:
        return Observation(ok=False, actual=NOT_FOUND)
    return Observation.passed(f"exists since {obj['metadata'].get('creationTimestamp')}")


def has_label(obj: JsonObject | None, key: str, value: str) -> Observation:
    if obj is None:
        return Observation(ok=False, actual=NOT_FOUND)
    labels = obj.get("metadata", {}).get("labels") or {}
    if labels.get(key) == value:
        return Observation.passed(f"{key}={value}")
    actual = f"label {key}={labels[key]!r}" if key in labels else f"no label {key}"
    others = ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "none"
    return Observation(ok=False, actual=f"{actual} (labels: {others})", since=_created(obj))


def has_keys(obj: JsonObject | None, keys: list[str]) -> Observation:
    """The keys of ``data`` (and ``binaryData``, ``stringData``): names only, never values."""
    if obj is None:
        return Observation(ok=False, actual=NOT_FOUND)
    present = sorted(
        {k for field in ("data", "binaryData", "stringData") for k in (obj.get(field) or {})}
    )
    missing = [k for k in keys if k not in present]
    listed = ", ".join(present) or "none"
    if not missing:
        return Observation.passed(f"keys {listed}")
    return Observation(ok=False, actual=f"no key {', '.join(missing)} (keys: {listed})",
                       since=_created(obj))  # fmt: skip


def operator_installed(
    csvs: list[JsonObject], operator: str, wanted: Version | None
) -> tuple[Observation, str | None]:
    """The newest ClusterServiceVersion of the operator, judged: phase Succeeded (OLM's
    ClusterServiceVersionPhase), ``spec.version`` at ``wanted`` or later; and its version."""
    label = f"operators.coreos.com/{operator}."
    mine = [
        c
        for c in csvs
        if c["metadata"]["name"] == operator
        or c["metadata"]["name"].startswith(f"{operator}.")
        or any(k.startswith(label) for k in (c["metadata"].get("labels") or {}))
    ]
    if not mine:
        names = ", ".join(c["metadata"]["name"] for c in csvs) or "none"
        return Observation(ok=False, actual=f"no ClusterServiceVersion of it (CSVs: {names})"), None

    def version_of(csv: JsonObject) -> Version:
        try:
            return parse_version(str((csv.get("spec") or {}).get("version") or "0"))
        except ValueError:
            return parse_version("0")

    csv = max(mine, key=version_of)
    found, status = version_of(csv), csv.get("status") or {}
    raw = str((csv.get("spec") or {}).get("version") or found)
    phase = status.get("phase")
    actual = f"{csv['metadata']['name']} version {raw}, phase {phase or 'not reported'}"
    if phase != "Succeeded":
        said = f"{status.get('reason')}: {status.get('message')}" if status.get("reason") else None
        terminal = "phase Failed" if phase == "Failed" else None
        return Observation(ok=False, actual=actual, cause=said, terminal=terminal), raw
    if wanted is not None and found < wanted:
        older = Observation(ok=False, actual=actual, cause=f"{raw} is older than {wanted}")
        return older, raw
    return Observation.passed(actual), raw


def condition_is(obj: JsonObject | None, type_: str, status: str) -> Observation:
    if obj is None:
        return Observation(ok=False, actual=NOT_FOUND)
    cond = condition(obj, type_)
    if cond is None:
        present = ", ".join(describe_condition(c) for c in conditions(obj)) or "none"
        return Observation(
            ok=False, actual=f"no condition {type_} (conditions: {present})", since=_created(obj)
        )
    if str(cond.get("status")) == status:
        return Observation.passed(describe_condition(cond))
    reason = cond.get("reason")
    terminal = f"reason {reason}" if reason in TERMINAL_CONDITION_REASONS else None
    refused = next(
        (
            c
            for c in conditions(obj)
            if c.get("status") == "False" and CREDENTIALS_REFUSED.search(str(c.get("message")))
        ),
        None,
    )
    if refused is not None and terminal is None:
        terminal = f"condition {refused.get('type')}: the credentials were refused"
    return Observation(
        ok=False,
        actual=describe_condition(cond),
        since=parse_time(cond.get("lastTransitionTime")),
        cause=describe_condition(refused) if refused is not None else None,
        terminal=terminal,
    )


def phase_is(obj: JsonObject | None, phase: str) -> Observation:
    if obj is None:
        return Observation(ok=False, actual=NOT_FOUND)
    actual = obj.get("status", {}).get("phase")
    if actual == phase:
        return Observation.passed(f"phase {actual}")
    failing = [c for c in conditions(obj) if c.get("status") == "False"]
    cause = "; ".join(describe_condition(c) for c in failing) or None
    return Observation(
        ok=False,
        actual=f"phase {actual}" if actual else "no .status.phase yet",
        cause=cause,
        terminal=f"phase {actual}" if actual in TERMINAL_PHASES else None,
    )


def phase_with_pods(obj: JsonObject | None, pods: list[JsonObject], phase: str) -> Observation:
    """``phase_is``; when not, the object's pods that are not ready explain it, and one that
    will not recover by waiting (CrashLoopBackOff, an image that cannot be pulled) ends it."""
    seen = phase_is(obj, phase)
    if seen.ok or obj is None:
        return seen
    not_ready = [p for p in pods if not pod_is_ready(p)]
    if not not_ready:
        return seen
    cause, terminal = _pods_cause(not_ready, None)
    joined = "; ".join(c for c in (seen.cause, cause) if c) or None
    return replace(seen, cause=joined, terminal=seen.terminal or terminal)


def deployment_available(
    deployment: JsonObject | None, pods: list[JsonObject], ready: int | None, desired: int | None
) -> Observation:
    if deployment is None:
        return Observation(ok=False, actual=NOT_FOUND)
    spec_replicas = int(deployment.get("spec", {}).get("replicas", 1))
    status = deployment.get("status", {})
    ready_now = int(status.get("readyReplicas", 0))
    available = condition(deployment, "Available")
    progressing = condition(deployment, "Progressing")
    available_true = bool(available and available.get("status") == "True")
    counts_ok = ready is None or (ready_now == ready and spec_replicas == desired)
    current = status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
    state = f"{ready_now}/{spec_replicas} replicas ready, " + (
        describe_condition(available) if available else "no Available condition yet"
    )
    if available_true and counts_ok and current:
        return Observation.passed(state)
    terminal = None
    if progressing and progressing.get("reason") in TERMINAL_CONDITION_REASONS:
        terminal = f"Progressing reason {progressing.get('reason')}"
    cause, pod_terminal = _pods_cause(pods, deployment)
    return Observation(
        ok=False,
        actual=state,
        since=parse_time((available or {}).get("lastTransitionTime")) or _created(deployment),
        cause=cause,
        terminal=terminal or pod_terminal,
    )


def pods_ready(pods: list[JsonObject], selector: str, namespace: str | None) -> Observation:
    if not pods:
        return Observation(ok=False, actual=f"no pod matches labels {selector!r} in {namespace}")
    not_ready = [p for p in pods if not pod_is_ready(p)]
    if not not_ready:
        return Observation.passed(f"{len(pods)}/{len(pods)} pods Ready")
    cause, terminal = _pods_cause(not_ready, None)
    since = min(
        (
            t
            for p in not_ready
            if (t := parse_time((condition(p, "Ready") or {}).get("lastTransitionTime")))
        ),
        default=None,
    )
    return Observation(
        ok=False,
        actual=f"{len(pods) - len(not_ready)}/{len(pods)} pods Ready",
        since=since,
        cause=cause,
        terminal=terminal,
    )


def pods_have_container(
    pods: list[JsonObject], selector: str, namespace: str | None, container: str
) -> Observation:
    if not pods:
        return Observation(ok=False, actual=f"no pod matches labels {selector!r} in {namespace}")
    missing = [p for p in pods if container not in container_names(p)]
    if not missing:
        return Observation.passed(f"{len(pods)}/{len(pods)} pods have container {container}")
    first = missing[0]
    detail = "; ".join(
        f"pod {p['metadata']['name']} has containers [{', '.join(container_names(p))}]"
        for p in missing[:3]
    )
    return Observation(
        ok=False,
        actual=f"{len(missing)}/{len(pods)} pods lack container {container}: {detail}",
        since=_created(first),
    )


def matches(obj: JsonObject | None, expected: Any) -> Observation:
    if obj is None:
        return Observation(ok=False, actual=NOT_FOUND)
    mismatches = partial_mismatches(expected, obj)
    if not mismatches:
        return Observation.passed("all written fields match")
    shown = "; ".join(_shown(m, obj.get("kind")) for m in mismatches[:5])
    more = f" (and {len(mismatches) - 5} more)" if len(mismatches) > 5 else ""
    return Observation(ok=False, actual=shown + more)


def _shown(mismatch: Mismatch, kind: str | None) -> str:
    """A mismatch as a message may show it: a field that holds secrets or configuration
    (Secret or ConfigMap data, env, args) says that it differs, never what either side holds."""
    if sensitive_path(kind, mismatch.path):
        how = "absent" if mismatch.note == "field absent" else "differs from the value written"
        return f"{mismatch.path}: {how} (values of this field are not shown)"
    expected, actual = redact_fields(mismatch.expected), redact_fields(mismatch.actual)
    return str(replace(mismatch, expected=expected, actual=actual))


def _pods_cause(pods: list[JsonObject], owner: JsonObject | None) -> tuple[str | None, str | None]:
    """The likeliest cause among pods: a terminal one first, else the first not ready."""
    if not pods:
        if owner is None:
            return None, None
        return "no pods exist for it (its ReplicaSet's events say why: quota, admission)", None
    summaries = [pod_summary(p) for p in pods if not pod_is_ready(p)]
    terminal = next(((line, reason) for line, reason in summaries if reason), None)
    if terminal:
        return terminal
    return (summaries[0][0], None) if summaries else (None, None)


DOCLING_AVAILABLE = "DeploymentAvailable"
DOCLING_RULE = (
    "the docling-operator's rule: it writes no Ready condition, DeploymentAvailable copies "
    "the Available condition of Deployment <name>-deployment"
)


def docling_available(obj: JsonObject | None) -> Observation:
    """A DoclingServe as its operator reports it (docling-operator internal/reconcilers/
    status.go): ``DeploymentAvailable`` copied from its Deployment's ``Available``;
    ``DeploymentCreated`` is Unknown/DeploymentStatusError when the operator cannot read it."""
    seen = condition_is(obj, DOCLING_AVAILABLE, "True")
    if seen.ok or obj is None:
        return seen
    deployment = f"Deployment {obj['metadata']['name']}-deployment"
    created = condition(obj, "DeploymentCreated")
    available = condition(obj, DOCLING_AVAILABLE)
    if created is not None and created.get("status") != "True":
        cause = f"the operator cannot read its {deployment}: {describe_condition(created)}"
    elif available is not None:
        said = available.get("message") or available.get("reason") or "no message"
        cause = f"{deployment} is not available: {said}"
    else:
        cause = (
            f"the operator has not reported on {deployment} yet (no {DOCLING_AVAILABLE} "
            "condition): is the docling-operator running?"
        )
    return replace(seen, cause=cause)
