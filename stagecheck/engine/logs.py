"""What workloads wrote: a line their logs must contain ("server ready"), or lines they must
not (an error pattern), read through the API server as ``oc logs`` reads them.

The last ``SCAN_LINES`` lines of each container of each pod are read. A line that must appear
may arrive: with ``within`` the logs are read again every ``POLL_S`` seconds until it does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stagecheck.engine.evidence import pod_logs
from stagecheck.engine.outcome import Evidence, Observation, StepFailure
from stagecheck.engine.related import selector_string
from stagecheck.engine.wait import polled
from stagecheck.errors import SpecificationError, StagecheckError
from stagecheck.kube.client import JsonObject, Kube

SCAN_LINES = 2000
POLL_S = 2.0
MAX_SHOWN = 5  # lines quoted in a red step's message


@dataclass(frozen=True)
class Source:
    """Whose logs: a Deployment's pods (by its selector), or pods by a label selector."""

    namespace: str
    deployment: str | None = None
    selector: str | None = None

    def describe(self) -> str:
        if self.deployment:
            return f"Deployment {self.namespace}/{self.deployment}"
        return f"pods with labels {self.selector} in {self.namespace}"


def expect_line(kube: Kube, source: Source, text: str, within: float | None) -> None:
    """Some container of some pod wrote a line containing ``text``."""
    read: list[JsonObject] = []  # the pods of the last attempt, for the evidence

    def attempt() -> None:
        pods, logs = _read(kube, source)
        read[:] = pods
        if not any(text in line for log in logs.values() for line in log.splitlines()):
            counted = f"{len(logs)} container log(s) of {len(pods)} pod(s)"
            actual = f"no line containing it in {counted}" if logs else "no log to read (no pod)"
            raise StepFailure(
                subject=f"logs of {source.describe()}",
                expected=f"a line containing {text!r}",
                observation=Observation(ok=False, actual=actual),
            )

    try:
        polled(attempt, within, POLL_S)
    except StepFailure as failure:
        if read:  # the logs as they were at the end, read once, not on every attempt
            failure.evidence.extend(e for e in [pod_logs(kube, read)] if e is not None)
        raise


def expect_no_line(kube: Kube, source: Source, pattern: str) -> None:
    """No container of any pod wrote a line matching ``pattern`` (a regular expression)."""
    try:
        expression = re.compile(pattern)
    except re.error as error:
        raise SpecificationError(f"{pattern!r} is not a regular expression: {error}") from None
    pods, logs = _read(kube, source)
    found = [
        f"{where}: {line.strip()[:200]}"
        for where, log in logs.items()
        for line in log.splitlines()
        if expression.search(line)
    ]
    if found:
        shown = "; ".join(found[:MAX_SHOWN]) + (f" (and {len(found) - MAX_SHOWN} more)"
                                                if len(found) > MAX_SHOWN else "")  # fmt: skip
        _fail(kube, source, f"no line matching {pattern!r}", f"{len(found)} line(s): {shown}", pods)


def _read(kube: Kube, source: Source) -> tuple[list[JsonObject], dict[str, str]]:
    """The pods, and each container's log by ``pod/container``."""
    selector = source.selector
    if source.deployment:
        path = f"/apis/apps/v1/namespaces/{source.namespace}/deployments/{source.deployment}"
        deployment = kube.get_or_none(path)
        if deployment is None:
            raise StepFailure(
                subject=source.describe(), expected="its pods' logs",
                observation=Observation(ok=False, actual="not found"),
            )  # fmt: skip
        selector = selector_string(deployment)
    query = {"labelSelector": selector} if selector else {}
    pods = kube.get(f"/api/v1/namespaces/{source.namespace}/pods", query).get("items", [])
    logs = {}
    for pod in pods:
        name = pod["metadata"]["name"]
        for container in (pod.get("spec") or {}).get("containers") or []:
            params = {"container": container["name"], "tailLines": str(SCAN_LINES)}
            try:
                logs[f"{name}/{container['name']}"] = kube.get_text(
                    f"/api/v1/namespaces/{source.namespace}/pods/{name}/log", params
                )
            except StagecheckError:
                continue  # not started yet, or no log: the evidence says why
    return pods, logs


def _fail(
    kube: Kube,
    source: Source,
    expected: str,
    actual: str,
    pods: list[JsonObject],
) -> None:
    evidence: list[Evidence] = [e for e in [pod_logs(kube, pods)] if e is not None]
    raise StepFailure(
        subject=f"logs of {source.describe()}",
        expected=expected,
        observation=Observation(ok=False, actual=actual),
        evidence=evidence,
    )
