"""A stand-in for the container runtime's log files, for the world's pods that kwok runs.

kwok's nodes run nothing, so ``oc logs`` of a world pod would have nothing to read; yet behind
each of the stage's Services a real data-plane process answers (``Context.backends``). This
stand-in writes that process's output as a container runtime writes a container's log, and
points kwok at it, so the API server serves the pod's log (``pods/<pod>/log``, with
``tailLines``) and a red step about those pods carries real log lines, as on a cluster.

Rules followed:
- The CRI log format the kubelet reads (k8s.io/cri-client pkg/logs ``ReadLogs``, used by kwok
  v0.8.0 pkg/kwok/server/debugging_logs.go): one line per record,
  ``<RFC 3339 time with nanoseconds> <stdout|stderr> F <text>``; a line that does not parse is
  skipped by the reader, so every line is written whole.
- kwok's ``Logs`` resource (kwok.x-k8s.io/v1alpha1, pkg/apis/v1alpha1/logs_types.go): named
  and namespaced as the pod, ``spec.logs[].containers`` (empty: every container), ``logsFile``,
  ``follow``. It is owned by the pod, so it goes with it.

Where it knowingly differs: every container of such a pod shows the one process's output (a
sidecar too); a line's time is when this stand-in read it (within a pass, half a second),
not when the process wrote it; all of it is ``stdout``; no previous container's log (the data
plane's restarts are not the pod's). Pods on the stand-in kubelet (node.py) and on nodes kwok
does not manage are left alone: their node serves their logs, or nothing does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from stagecheck.kube.client import JsonObject
from stagecheck.sandbox.standins.base import (
    ENDPOINTS_FILE,
    Context,
    Reconciler,
    apply_owned,
    kwok_pods,
)

LOGS_KIND = "Logs.kwok.x-k8s.io"
PROCESS_LOGS = ENDPOINTS_FILE.parent / "logs"  # the data plane's supervisor writes them there
CRI_FOLDER = PROCESS_LOGS / "cri"
PODS_EVERY = 10  # passes (5 s): new pods get their Logs resource within that; files every pass


class ContainerLogsStandin(Reconciler):
    name = "container-logs-standin"

    def __init__(self) -> None:
        self._unfinished: dict[str, bytes] = {}  # backend -> a line not yet ended
        self._passes = 0
        self._mirrored: set[str] = set()  # backends whose log this process mirrors

    def reconcile(self, ctx: Context) -> None:
        self._passes += 1
        for mirrored in self._mirrored:
            self._mirror(ctx.state_dir, mirrored)
        if self._passes % PODS_EVERY != 1 or ctx.served(LOGS_KIND) is None:
            return  # (a control plane without kwok's Logs resources: nothing to point)
        running = ctx.data_plane_services()
        nodes = {n["metadata"]["name"]: n for n in ctx.items("Node")}  # once a pass
        for service in ctx.items("Service"):
            backend = ctx.backends.get(service["metadata"]["name"]) or ""
            if backend not in running:
                continue
            self._mirrored.add(backend)
            cri = self._mirror(ctx.state_dir, backend)
            for pod in kwok_pods(ctx, service, nodes):
                apply_owned(ctx, self.name, pod, _logs_resource(pod, cri))

    def _mirror(self, state_dir: Path, backend: str) -> Path:
        """Append what the process wrote since the last pass, as CRI lines."""
        source = state_dir / PROCESS_LOGS / f"{backend}.log"
        target = state_dir / CRI_FOLDER / f"{backend}.log"
        mark = target.with_suffix(".offset")  # how far it was read: kept across restarts
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
        offset = int(mark.read_text() or 0) if mark.exists() else 0
        try:
            size = source.stat().st_size
        except FileNotFoundError:
            return target
        if size < offset:  # the process was started again with a fresh log
            offset, self._unfinished[backend] = 0, b""
        if size == offset:
            return target
        with source.open("rb") as log:
            log.seek(offset)
            chunk = self._unfinished.get(backend, b"") + log.read(size - offset)
        *lines, self._unfinished[backend] = chunk.split(b"\n")
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
        with target.open("ab") as out:
            out.writelines(stamp + b" stdout F " + line.rstrip(b"\r") + b"\n" for line in lines)
        mark.write_text(str(size))
        return target


def _logs_resource(pod: JsonObject, cri: Path) -> JsonObject:
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Logs",
        "metadata": {"name": pod["metadata"]["name"], "namespace": pod["metadata"]["namespace"]},
        "spec": {"logs": [{"containers": [], "logsFile": str(cri), "follow": True}]},
    }
