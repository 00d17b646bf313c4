"""A wait ends at once, with its cause, when its watch cannot go on: an ERROR event, a relist
that fails, a defect in the watch thread. It never waits out its budget in silence."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from stagecheck.engine.outcome import Observation
from stagecheck.engine.wait import Query, Snapshot, observe
from stagecheck.errors import KubeApiError
from stagecheck.kube.client import WatchEvent
from stagecheck.kube.discovery import ResourceType

PODS = ResourceType("", "v1", "Pod", "pods", "pod", namespaced=True)
BUDGET_S = 30.0


class Stream:
    def __init__(self, events: list[WatchEvent]) -> None:
        self.events = events

    def __iter__(self) -> Iterator[WatchEvent]:
        yield from self.events

    def abort(self) -> None:
        pass


class Cluster:
    """An API server's answers as the wait reads them: a list, then a watch of given events."""

    def __init__(self, events: list[WatchEvent], relist_fails: bool = False) -> None:
        self.events, self.relist_fails, self.lists = events, relist_fails, 0

    def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        self.lists += 1
        if self.lists > 1 and self.relist_fails:
            raise ValueError("the relist's answer is not JSON")
        return {"items": [], "metadata": {"resourceVersion": "1"}}

    def watch(self, path: str, params: dict[str, str], timeout_s: float) -> Stream:
        return Stream(self.events)


def never(snapshot: Snapshot) -> Observation:
    return Observation(ok=False, actual="no pod yet")


def wait(cluster: Cluster) -> None:
    query = Query("pods", PODS, "ns", label_selector="app=x")
    observe(cluster, [query], never, BUDGET_S)  # type: ignore[arg-type]


def test_an_error_event_ends_the_wait_with_its_status() -> None:
    status = {"kind": "Status", "code": 500, "reason": "InternalError", "message": "etcd lost"}
    started = time.monotonic()
    with pytest.raises(KubeApiError, match="WATCH /api/v1/namespaces/ns/pods -> HTTP 500"):
        wait(Cluster([WatchEvent("ERROR", status)]))
    assert time.monotonic() - started < BUDGET_S / 3


def test_a_relist_that_fails_ends_the_wait_with_its_error() -> None:
    gone = WatchEvent("ERROR", {"kind": "Status", "code": 410, "reason": "Expired"})
    started = time.monotonic()
    with pytest.raises(ValueError, match="the relist's answer is not JSON"):
        wait(Cluster([gone], relist_fails=True))
    assert time.monotonic() - started < BUDGET_S / 3
