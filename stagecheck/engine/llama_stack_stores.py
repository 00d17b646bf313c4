"""Why a Llama Stack server's pod does not serve: it cannot write its stores.

The server keeps its registry and its other stores in SQLite files (rh-dev's run.yaml:
``/opt/app-root/src/.llama/distributions/rh/*.db``) and opens them as it starts; where it
cannot write there it exits, and its pod crash-loops. Its log says so in one of two ways:

- Python's own error names the path: ``[Errno 30] Read-only file system: '<path>'`` or
  ``[Errno 13] Permission denied: '<path>'`` (a folder or file it makes);
- SQLite's does not: ``sqlite3.OperationalError: unable to open database file`` (no file can
  be made in the folder) or ``attempt to write a readonly database``. The paths are then the
  ``db_path`` values of the run configuration the server logs as it starts (llama-stack
  v0.2.22 and v0.7 core/server/server.py log it).

A cause is claimed only where a read-only mount of the pod's container covers such a path
(``checks.read_only_mounts``), named by the field that asks for it where the server resource
has one: the LlamaStackDistribution's ``spec.server.podOverrides.volumeMounts``, which
llama-stack-k8s-operator copies into its container (controllers/resource_helper.go
``configurePodOverrides``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from stagecheck.engine.checks import ReadOnlyMount, pod_is_ready, read_only_mounts
from stagecheck.engine.mesh import SIDECAR
from stagecheck.errors import StagecheckError
from stagecheck.kube.client import JsonObject, Kube

WRITE_REFUSED = re.compile(r"\[Errno \d+\] (?:Read-only file system|Permission denied): '([^']+)'")
SQLITE_REFUSED = re.compile(r"unable to open database file|attempt to write a readonly database")
DB_PATH = re.compile(r"\bdb_path:\s*['\"]?([^\s'\"]+)")
# Where each server kind takes the mounts it adds to its container
SERVER_MOUNTS = {"LlamaStackDistribution": "spec.server.podOverrides.volumeMounts"}
LOG_LINES = 2000  # the configuration is logged at the start, the failure at the end
QUOTED = 200  # characters of the log line quoted in the cause


@dataclass(frozen=True)
class WriteFailure:
    """A path the server could not write, and the log line that says so."""

    path: str
    said: str


def write_failures(log: str) -> list[WriteFailure]:
    """What the log shows the server could not write: the paths its errors name, else, after
    SQLite's error that names none, the database paths of its logged configuration."""
    lines = log.splitlines()
    named = [WriteFailure(m, line.strip()) for line in lines for m in WRITE_REFUSED.findall(line)]
    if named:
        return named
    sqlite = next((line.strip() for line in lines if SQLITE_REFUSED.search(line)), None)
    if sqlite is None:
        return []
    return [WriteFailure(path, sqlite) for line in lines for path in DB_PATH.findall(line)]


def store_not_writable(
    server: JsonObject | None, pod: JsonObject, container: str, log: str
) -> str | None:
    """The cause, where ``log`` (the container's) shows a write failure under one of the
    container's read-only mounts; None without that evidence."""
    mounts = read_only_mounts(pod, container)
    for failure in write_failures(log):
        covering = [m for m in mounts if m.covers(failure.path)]
        if not covering:
            continue
        mount = max(covering, key=lambda m: len(m.path))
        return (
            f"the server cannot write {failure.path}: that path is under the volume "
            f'"{mount.volume}" ({mount.source}) that {_mounted_by(server, pod, container, mount)} '
            f"mounts read-only at {mount.path} (its log: {failure.said[:QUOTED]!r})"
        )
    return None


def stores_cause(kube: Kube, server: JsonObject | None, pods: list[JsonObject]) -> str | None:
    """``store_not_writable`` for the first not-ready pod whose log shows it: each container's
    log, and the previous container's after a restart (``oc logs``, ``oc logs -p``)."""
    for pod in pods:
        if pod_is_ready(pod):
            continue
        restarts = {
            s.get("name"): s.get("restartCount") or 0
            for s in (pod.get("status") or {}).get("containerStatuses") or []
        }
        for spec in (pod.get("spec") or {}).get("containers") or []:
            name = str(spec.get("name"))
            if name == SIDECAR or not read_only_mounts(pod, name):
                continue
            for previous in (False, True)[: 2 if restarts.get(name) else 1]:
                cause = store_not_writable(server, pod, name, _log(kube, pod, name, previous))
                if cause:
                    return cause
    return None


def _mounted_by(
    server: JsonObject | None, pod: JsonObject, container: str, mount: ReadOnlyMount
) -> str:
    """The field that asks for the mount: the server resource's, else the pod's."""
    path = SERVER_MOUNTS.get(str((server or {}).get("kind")))
    if server is not None and path is not None:
        found: Any = server
        for key in path.split("."):
            found = found.get(key) if isinstance(found, dict) else None
        for index, item in enumerate(found if isinstance(found, list) else []):
            if item.get("name") == mount.volume and item.get("mountPath") == mount.path:
                return f"{server['kind']} {server['metadata']['name']} {path}[{index}]"
    return f"pod {pod['metadata']['name']} container {container} volumeMounts[{mount.index}]"


def _log(kube: Kube, pod: JsonObject, container: str, previous: bool) -> str:
    meta = pod["metadata"]
    params = {"container": container, "tailLines": str(LOG_LINES)}
    if previous:
        params["previous"] = "true"
    try:
        return kube.get_text(
            f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/log", params
        )
    except StagecheckError:
        return ""  # not started, or no previous container: nothing said
