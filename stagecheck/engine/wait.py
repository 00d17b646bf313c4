"""Waiting without sleeping: list, then watch, and re-check on every change.

A check sees a snapshot of one or more queries (an object by name, pods by selector, ...).
With no time budget it is evaluated once. With one, every query is watched in its own
thread; the check runs again on each event, so the step returns as soon as the state
arrives, and stops early when the check reports a terminal state.

What cannot be watched (a service's answer, a URL, a log line) is asked again instead:
``polled`` is that loop, once for all of them.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stagecheck.engine.outcome import Observation, StepFailure
from stagecheck.errors import KubeApiError
from stagecheck.kube.client import JsonObject, Kube, WatchStream
from stagecheck.kube.discovery import ResourceType

RETRY_PAUSE_S = 0.5


def polled[R](
    attempt: Callable[[], R],
    within: float | None,
    pause_s: float,
    hopeless: Callable[[], bool] = lambda: False,
) -> R:
    """``attempt()`` now and, with ``within``, again every ``pause_s`` while it raises a
    StepFailure, until it passes, the time is up, or ``hopeless()`` says waiting cannot help.
    The last failure is raised, with how long was waited when there was a budget."""
    started = time.monotonic()
    deadline = started + (within or 0)
    while True:
        try:
            return attempt()
        except StepFailure as failure:
            left = deadline - time.monotonic()
            if left <= 0 or hopeless():
                if within:
                    failure.waited = time.monotonic() - started
                raise
        time.sleep(min(pause_s, left))


@dataclass(frozen=True)
class Query:
    """A set of objects to observe: one by name, or all matching a label selector."""

    key: str
    resource: ResourceType
    namespace: str | None
    name: str | None = None
    label_selector: str | None = None

    def params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        if self.name:
            params["fieldSelector"] = f"metadata.name={self.name}"
        if self.label_selector:
            params["labelSelector"] = self.label_selector
        return params

    def path(self) -> str:
        return self.resource.collection_path(self.namespace)


class Snapshot:
    """The objects each query currently sees, by query key."""

    def __init__(self, objects: Mapping[str, Mapping[str, JsonObject]]) -> None:
        self._objects = objects

    def all(self, key: str) -> list[JsonObject]:
        return sorted(self._objects.get(key, {}).values(), key=_name_of)

    def one(self, key: str) -> JsonObject | None:
        found = self.all(key)
        return found[0] if found else None


Check = Callable[[Snapshot], Observation]


@dataclass
class Result:
    observation: Observation
    snapshot: Snapshot
    waited: float


def observe(kube: Kube, queries: list[Query], check: Check, within: float | None) -> Result:
    """Evaluate ``check`` now, and on every change until it passes, turns terminal or time is up."""
    started = time.monotonic()
    state: dict[str, dict[str, JsonObject]] = {}
    versions: dict[str, str] = {}
    for q in queries:
        state[q.key], versions[q.key] = _list(kube, q)
    observation = check(Snapshot(state))
    if observation.ok or observation.terminal or not within:
        return Result(observation, Snapshot(state), time.monotonic() - started)

    deadline = started + within
    inbox: queue.Queue[tuple[str, str, Any]] = queue.Queue()
    stop = threading.Event()
    pumps = [_Pump(kube, q, versions[q.key], deadline, inbox, stop) for q in queries]
    for pump in pumps:
        pump.start()
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                key, kind, payload = inbox.get(timeout=remaining)
            except queue.Empty:
                break
            # Apply every event that has arrived, then check once: a roll-out of thousands of
            # pods sends events faster than a check of all of them runs, and checking per event
            # would fall ever further behind the cluster.
            while True:
                if kind == "failed":
                    raise payload
                _apply(state[key], kind, payload)
                try:
                    key, kind, payload = inbox.get_nowait()
                except queue.Empty:
                    break
            observation = check(Snapshot(state))
            if observation.ok or observation.terminal:
                break
    finally:
        stop.set()
        for pump in pumps:
            pump.abort()
    return Result(observation, Snapshot(state), time.monotonic() - started)


def _apply(objects: dict[str, JsonObject], kind: str, payload: Any) -> None:
    if kind == "relisted":
        objects.clear()
        objects.update(payload)
    elif kind == "DELETED":
        objects.pop(_uid(payload), None)
    else:
        objects[_uid(payload)] = payload


def _list(kube: Kube, q: Query) -> tuple[dict[str, JsonObject], str]:
    listing = kube.get(q.path(), params=q.params())
    items = {}
    for obj in listing.get("items", []):
        # Items of a list carry no kind; evidence and checks want whole objects.
        obj.setdefault("apiVersion", q.resource.api_version)
        obj.setdefault("kind", q.resource.kind)
        items[_uid(obj)] = obj
    return items, listing.get("metadata", {}).get("resourceVersion", "")


class _Pump(threading.Thread):
    """Feeds one query's watch events into the inbox until stopped or out of time."""

    def __init__(
        self,
        kube: Kube,
        q: Query,
        version: str,
        deadline: float,
        inbox: queue.Queue[tuple[str, str, Any]],
        stop: threading.Event,
    ) -> None:
        super().__init__(daemon=True, name=f"stagecheck-watch-{q.key}")
        self._kube, self._query, self._version = kube, q, version
        self._deadline, self._inbox, self._stop = deadline, inbox, stop
        self._stream: WatchStream | None = None
        self._lock = threading.Lock()

    def abort(self) -> None:
        with self._lock:
            if self._stream is not None:
                self._stream.abort()

    def run(self) -> None:
        # Whatever ends this thread ends the wait at once with its cause: unreachable, refused,
        # a relist that failed, or a defect (never a silent thread and a wait of its budget).
        try:
            self._follow()
        except Exception as error:  # noqa: BLE001 - handed to the waiting step, raised there
            self._inbox.put((self._query.key, "failed", error))

    def _follow(self) -> None:
        params = {**self._query.params(), "allowWatchBookmarks": "true"}
        while not self._stop.is_set() and (remaining := self._deadline - time.monotonic()) > 0:
            try:
                stream = self._kube.watch(
                    self._query.path(), {**params, "resourceVersion": self._version}, remaining
                )
                with self._lock:
                    self._stream = stream
                    if self._stop.is_set():
                        stream.abort()
                for event in stream:
                    if self._stop.is_set():
                        return
                    self._handle(event.type, event.object)
            except KubeApiError as error:
                if error.status != 410:
                    raise
                self._relist()  # our resourceVersion is too old: list again
            if not self._stop.is_set():
                self._stop.wait(RETRY_PAUSE_S)  # a watch the server closed: reopen it

    def _handle(self, kind: str, obj: JsonObject) -> None:
        if kind == "ERROR":  # a Status object
            if obj.get("code") == 410:  # our resourceVersion is too old: list again
                self._relist()
                return
            raise KubeApiError(
                "WATCH",
                self._query.path(),
                int(obj.get("code") or 0),
                str(obj.get("reason", "")),
                str(obj.get("message", "the watch ended with an error")),
            )
        self._version = obj.get("metadata", {}).get("resourceVersion", self._version)
        if kind != "BOOKMARK":
            self._inbox.put((self._query.key, kind, obj))

    def _relist(self) -> None:
        items, self._version = _list(self._kube, self._query)
        self._inbox.put((self._query.key, "relisted", items))


def _uid(obj: JsonObject) -> str:
    meta = obj.get("metadata", {})
    return str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}")


def _name_of(obj: JsonObject) -> str:
    return str(obj.get("metadata", {}).get("name", ""))
