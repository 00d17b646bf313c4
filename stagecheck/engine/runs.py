"""The run's lease and journal in the cluster, and the leftovers of dead runs.

A process of a run that writes holds a Lease (coordination.k8s.io/v1) named
``stagecheck-<run id>-<process>`` in the target namespace, renewed while it lives. Its
annotation ``stagecheck.io/journal`` lists what the process changed in the cluster, each entry
written *before* the change is made, and dropped once it is undone. So a hard kill (SIGKILL, an
evicted pod, a lost node) leaves behind a lease that stops being renewed and says what is left.

The next run that writes finds such leases: a run is dead when its lease says it ended, when
its process is gone from this host, or when it was not renewed for its lease duration. What
a dead run left is reported and, under ``--cleanup always``, removed: objects it created (only
while they still carry its run label), fields it applied to objects that existed before it
(released), namespace labels it changed (given back). Milvus collections and Llama Stack vector
stores carry the run id in their names, so their leftovers are swept the same way where a run
next writes to them. An object another *live* run created is never touched: the step refuses
it, naming that run.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stagecheck.errors import (
    Conflict,
    Forbidden,
    JournalUnwritable,
    KubeApiError,
    NotFound,
    StagecheckError,
)
from stagecheck.kube.client import JsonObject, Kube

RUN_LABEL = "stagecheck.io/run"
MANAGED_BY = "app.kubernetes.io/managed-by"
JOURNAL = "stagecheck.io/journal"
ENDED = "stagecheck.io/ended"
LEASE_SECONDS = 60  # a lease not renewed for this long belongs to a dead run
RENEW_EVERY_S = 15.0
LEASES = "/apis/coordination.k8s.io/v1"
# Run ids as config.new_run_id makes them, in names where "-" may not appear (Milvus) too.
RUN_ID = re.compile(r"run[-_]\d{8}[-_]\d{6}[-_][0-9a-f]{4}")

Change = dict[str, Any]  # {"op": "delete"|"release"|"label", "path": ..., "what": ...}


def field_manager(run_id: str) -> str:
    """The server-side apply manager of a run: its fields are its own, released by it alone."""
    return f"stagecheck-{run_id}"


def run_of(name: str) -> str | None:
    """The run id inside a data-plane object's name (``stagecheck_run_..._…``), if any."""
    found = RUN_ID.search(name)
    return found.group(0).replace("_", "-") if found else None


def data_plane_name(run_id: str, separator: str = "-") -> str:
    """A name for a data-plane object of this run, unique, carrying the run id."""
    token = os.urandom(3).hex()
    return separator.join(["stagecheck", run_id.replace("-", separator), token])


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _micro_time(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _annotated(key: str, value: str) -> JsonObject:
    return {"metadata": {"annotations": {key: value}}}


def _process_gone(holder: str) -> bool:
    """A holder ``host/pid`` of this host whose process no longer runs."""
    host, _, pid = holder.rpartition("/")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it runs, as somebody else
        return False
    return False


def why_dead(lease: JsonObject, now: datetime.datetime | None = None) -> str | None:
    """Why the run holding this lease is dead, or None while it lives."""
    meta, spec = lease.get("metadata", {}), lease.get("spec", {})
    if (meta.get("annotations") or {}).get(ENDED):
        return f"it ended at {meta['annotations'][ENDED]}, keeping what its cleanup policy kept"
    holder = str(spec.get("holderIdentity") or "")
    if _process_gone(holder):
        return f"its process ({holder}) is gone"
    renewed = _parse_time(spec.get("renewTime") or spec.get("acquireTime"))
    duration = int(spec.get("leaseDurationSeconds") or LEASE_SECONDS)
    if renewed is None:
        return "its lease was never renewed"
    silent = ((now or _now()) - renewed).total_seconds()
    if silent > duration:
        return f"its lease ({holder}) was not renewed for {silent:.0f} s (lease {duration} s)"
    return None


@dataclass
class DeadRun:
    run_id: str
    lease: str  # the lease's API path
    why: str
    changes: list[Change]

    def describe(self) -> str:
        what = ", ".join(str(c.get("what") or c.get("path")) for c in self.changes) or "nothing"
        return f"run {self.run_id} ({self.why}) left: {what}"


@dataclass
class Journal:
    """This process's lease and the changes it made, kept in the cluster as they happen."""

    kube: Kube
    namespace: str
    run_id: str
    process: str = "main"
    tell: Callable[[str], None] = lambda message: None  # what was found of dead runs, and done
    keep_leftovers: bool = False  # the cleanup policy keeps what dead runs left: report only
    plan: bool = False  # --plan: nothing is written, the lease neither
    lease_seconds: int = LEASE_SECONDS
    renew_every_s: float = RENEW_EVERY_S
    problems: list[str] = field(default_factory=list)
    _changes: dict[int, Change] = field(default_factory=dict)
    _next: int = 0
    _held: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _renewer: threading.Thread | None = None
    _live_cache: tuple[float, set[str]] | None = None

    @property
    def name(self) -> str:
        return f"stagecheck-{self.run_id}-{self.process}".lower()[:253]

    @property
    def path(self) -> str:
        return f"{LEASES}/namespaces/{self.namespace}/leases/{self.name}"

    # -- what this run changes ---------------------------------------------------------------
    def hold(self) -> None:
        """The lease exists from here on (before the first write of any kind): other runs
        see this one alive."""
        with self._lock:
            if not self._held:
                self._sync()

    def intend(self, change: Change) -> int:
        """Record a change before it is made; returns its token for ``forget``."""
        with self._lock:
            token, self._next = self._next, self._next + 1
            self._changes[token] = change
            self._sync()
            return token

    def forget(self, token: int) -> None:
        """The change was undone, or never made. Never fails a cleanup: a journal that cannot
        be written now (its namespace was just deleted) is noted, and it lists too much, not
        too little."""
        with self._lock:
            if self._changes.pop(token, None) is None or not self._held:
                return
            try:
                self._sync()
            except StagecheckError as error:
                self.problems.append(f"lease {self.name} not updated: {error}")

    def close(self) -> None:
        """The run ends: its lease goes, or says that it ended when changes were kept."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        with self._lock:
            try:
                if not self._held and self._changes:
                    self._sync()  # kept changes are told, even when the lease came late
                if not self._held:
                    return
                if self._changes:
                    self.kube.patch(self.path, _annotated(ENDED, _micro_time(_now())))
                else:
                    self.kube.delete(self.path)
            except StagecheckError as error:
                self.problems.append(f"lease {self.name}: {error}")
            self._held = False

    def _sync(self) -> None:
        """Write the journal into the lease, creating the lease when it is missing. A missing
        namespace (the run's own set creates it) defers the lease to the next change."""
        journal = json.dumps(list(self._changes.values()), separators=(",", ":"))
        if self._held:
            try:
                self.kube.patch(self.path, _annotated(JOURNAL, journal))
                return
            except NotFound:  # deleted with its namespace, by this run's own cleanup
                self._held = False
        if not self._changes and self._renewer is not None and not self._held:
            return  # nothing to tell any more
        now = _micro_time(_now())
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "labels": {RUN_LABEL: self.run_id, MANAGED_BY: "stagecheck"},
                "annotations": {JOURNAL: journal},
            },
            "spec": {
                "holderIdentity": f"{socket.gethostname()}/{os.getpid()}",
                "leaseDurationSeconds": self.lease_seconds,
                "acquireTime": now,
                "renewTime": now,
            },
        }
        try:
            self.kube.create(f"{LEASES}/namespaces/{self.namespace}/leases", body)
        except NotFound:  # no namespace yet
            return
        except KubeApiError as error:
            raise JournalUnwritable(
                f"the run's lease {self.namespace}/{self.name} cannot be created ({error}): "
                "stagecheck records each change there before it makes it, so that a run "
                "killed outright is cleaned up by the next; nothing was changed. Grant "
                "leases (coordination.k8s.io) get, list, create, patch and delete in "
                f"{self.namespace} (deploy/provisioner does)"
            ) from None
        self._held = True
        if self._renewer is None:
            self._renewer = threading.Thread(target=self._renew, name=self.name, daemon=True)
            self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.renew_every_s):
            with self._lock:
                if not self._held:
                    continue
                try:
                    self.kube.patch(self.path, {"spec": {"renewTime": _micro_time(_now())}})
                except NotFound:
                    self._held = False
                except StagecheckError as error:
                    self.problems.append(f"lease {self.name} not renewed: {error}")

    # -- other runs --------------------------------------------------------------------------
    def leases(self) -> list[JsonObject]:
        """Every stagecheck lease this run may read: all namespaces when allowed, else its own."""
        query = {"labelSelector": f"{MANAGED_BY}=stagecheck,{RUN_LABEL}"}
        try:
            found = self.kube.get(f"{LEASES}/leases", query)
        except Forbidden:
            found = self.kube.get(f"{LEASES}/namespaces/{self.namespace}/leases", query)
        items = found.get("items", [])
        return [item for item in items if item["metadata"]["name"].startswith("stagecheck-")]

    def live_runs(self, max_age_s: float = 5.0) -> set[str]:
        """Run ids holding a live lease (this one included), read at most every few seconds."""
        cached = self._live_cache
        if cached is not None and time.monotonic() - cached[0] < max_age_s:
            return cached[1]
        live = {self.run_id}
        for lease in self.leases():
            if why_dead(lease) is None:
                live.add(lease["metadata"]["labels"][RUN_LABEL])
        self._live_cache = (time.monotonic(), live)
        return live

    def is_live(self, run_id: str) -> bool:
        return run_id == self.run_id or run_id in self.live_runs()

    def dead_runs(self) -> list[DeadRun]:
        """Other runs' leases in this namespace whose runs are dead, with what they left."""
        dead = []
        for lease in self.leases():
            meta = lease["metadata"]
            run_id = meta["labels"][RUN_LABEL]
            why = why_dead(lease)
            if run_id == self.run_id or why is None or meta.get("namespace") != self.namespace:
                continue
            try:
                changes = json.loads((meta.get("annotations") or {}).get(JOURNAL) or "[]")
            except ValueError:
                changes = []
            path = f"{LEASES}/namespaces/{meta['namespace']}/leases/{meta['name']}"
            dead.append(DeadRun(run_id, path, why, changes))
        return dead

    def sweep(self, run: DeadRun) -> list[str]:
        """Undo what a dead run left, newest first; returns what could not be undone. Its lease
        goes once nothing is left, else keeps what is left."""
        problems: list[str] = []
        left: list[Change] = []
        for change in reversed(run.changes):
            try:
                undo(self.kube, run.run_id, change)
            except StagecheckError as error:
                problems.append(f"{change.get('what', change.get('path'))}: {error}")
                left.insert(0, change)
        try:
            if left:
                self.kube.patch(run.lease, _annotated(JOURNAL, json.dumps(left)))
            else:
                self.kube.delete(run.lease)
        except StagecheckError as error:
            problems.append(f"lease of run {run.run_id}: {error}")
        return problems


def undo(kube: Kube, run_id: str, change: Change) -> None:
    """Undo one change of a run (this one's cleanup, or a dead run's sweep)."""
    op, path = change["op"], change["path"]
    if op == "delete":  # only while it is still that run's: never what somebody made since
        current = kube.get_or_none(path)
        if current is None:
            return
        meta = current["metadata"]
        if (meta.get("labels") or {}).get(RUN_LABEL) != run_id:
            return
        try:
            kube.delete(path, uid=meta["uid"])
        except Conflict:  # deleted and made again by somebody else a moment ago
            return
    elif op == "release":
        kube.apply(path, change["body"], field_manager(run_id))
    elif op == "label":
        current = kube.get_or_none(path)
        labels = ((current or {}).get("metadata") or {}).get("labels") or {}
        if current is not None and labels.get(change["key"]) == change["value"]:
            kube.patch(path, {"metadata": {"labels": {change["key"]: change["before"]}}})
    else:
        raise StagecheckError(f"unknown change {op!r} in the journal of run {run_id}")


def created_by_live_run(journal: Journal, obj: JsonObject | None) -> str | None:
    """The id of another live run that created this object, if one did."""
    if obj is None:
        return None
    owner = ((obj.get("metadata") or {}).get("labels") or {}).get(RUN_LABEL)
    if owner is None or owner == journal.run_id:
        return None
    return owner if journal.is_live(owner) else None


def sweep_leftovers(journal: Journal) -> None:
    """Report what dead runs left in the cluster, and remove it unless the policy keeps it."""
    try:
        dead = journal.dead_runs()
    except StagecheckError as error:  # told, never the scenario's failure
        journal.tell(f"the leftovers of dead runs could not be looked for: {error}")
        return
    for run in dead:
        if journal.keep_leftovers:
            journal.tell(f"{run.describe()}; {KEPT}")
            continue
        problems = journal.sweep(run)
        outcome = "removed" if not problems else "not all removed: " + "; ".join(problems)
        journal.tell(f"{run.describe()}; {outcome}")


def sweep_named(journal: Journal, names: Mapping[str, Callable[[], object]], where: str) -> None:
    """Data-plane leftovers: of ``names`` (an object's name -> how to remove it), those whose
    name carries the id of a run that is not alive are reported and removed by the policy."""
    for name, remove in names.items():
        run_id = run_of(name)
        if run_id is None or journal.is_live(run_id):
            continue
        if journal.keep_leftovers:
            journal.tell(f"run {run_id} (no live lease) left {name} in {where}; {KEPT}")
            continue
        try:
            remove()
        except Exception as error:  # noqa: BLE001 - a client's own error: told, never fatal
            journal.tell(f"run {run_id} left {name} in {where}; not removed: {error}")
            continue
        journal.tell(f"run {run_id} (no live lease) left {name} in {where}; removed")


KEPT = "kept (cleanup policy): a run with --cleanup always removes it"
