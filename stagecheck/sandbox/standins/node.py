"""A stand-in kubelet: one node of the sandbox that really runs its pods' commands.

kwok's nodes run nothing: a pod there is Running by decree. This node runs the command of each
pod bound to it on this machine, so a check that needs a pod to do something (the
connectivity probe) can run here. Rules followed (Kubernetes v1.3x, pkg/kubelet):
- registration: a Node with ``status.addresses`` (InternalIP), ``daemonEndpoints.
  kubeletEndpoint.Port``, capacity, ``nodeInfo`` and a ``Ready`` condition (reason
  ``KubeletReady``); the heartbeat is a Lease ``kube-node-lease/<node>`` (40 s duration,
  renewed every 10 s, pkg/kubelet/nodelease), which the node lifecycle controller reads.
- pod status (pkg/kubelet/status, kubelet_pods.go ``generateAPIPodStatus``): ``Pending`` with
  ``waiting: ContainerCreating``, then ``Running`` with ``running.startedAt`` and ``Ready``,
  then per container ``terminated`` (exitCode, reason ``Completed`` for 0 else ``Error``,
  startedAt, finishedAt); with ``restartPolicy: Never`` the phase is ``Succeeded`` when every
  container exited 0, ``Failed`` when one did not, and ``Running`` while one still runs (an
  ``istio-proxy`` sidecar keeps a finished pod Running, as on a real node). ``Ready`` and
  ``ContainersReady`` turn False with reason ``PodCompleted`` once all have ended.
- logs: the API server's ``pods/<pod>/log`` is served from ``GET /containerLogs/<ns>/<pod>/
  <container>`` on the node's kubelet port over HTTPS; the sandbox's API server has no
  ``--kubelet-certificate-authority``, so it does not verify the node's self-signed
  certificate (KubeletClientConfig: no CA means an insecure transport). stdout and stderr are
  one log, as ``kubectl logs`` shows them.
- deletion: a pod with a ``deletionTimestamp`` is stopped and then deleted with grace period
  0, as the kubelet confirms a deletion.

Placement (how only the pods meant for this node land on it, without the engine knowing the
sandbox): the node keeps one pod of its own, ``kube-system/<node>-placement``, with a required
pod anti-affinity against every pod (all namespaces) that is not a stagecheck probe
(``stagecheck.io/probe`` absent) and not stagecheck's own check (``app.kubernetes.io/name=
stagecheck``, deploy/'s Job), so the real scheduler never places the world's pods here.
The engine's probe, on any cluster, asks for a node kwok does not manage (a required node
affinity), so on the sandbox it can only land here; on a cluster without kwok it asks nothing.

How a container runs: its ``command`` + ``args`` with this machine's programs (the image is
not pulled; curl is the host's), or, for the project's own image, the Containerfile's
entrypoint from this checkout (images.py), under bubblewrap: this machine's files read-only,
the pod's own folder and its writable volumes writable, its volumes at their mount paths
(pod_volumes.py: the service account's token, CA and namespace at
/var/run/secrets/kubernetes.io/serviceaccount, ConfigMaps and Secrets read-only), a private
/tmp and /run, its own PID namespace, the host's loopback network. Its environment is the
image's, its ``env`` values, ``KUBERNETES_SERVICE_HOST``/``PORT`` (the API server), and
``http_proxy``/``https_proxy`` pointing at the mesh gate listener bound to this pod
(mesh_gate.py), which stands in for cluster DNS and the mesh by the pod's ``istio-proxy``
container. ``POST 127.0.0.1:15020/quitquitquit`` from a pod's process ends its
``istio-proxy`` (pilot_agent.py), so a Job whose check stops its sidecar completes. Without
bubblewrap on this machine it runs nothing: each container waits with reason
``CreateContainerError`` and a message naming the missing package (what a kubelet reports when
its runtime cannot make the container), and the stand-ins' status names it.
Knowingly different: no probes, resource limits, security contexts (the process runs as this
machine's user) or restarts; ``istio-proxy`` runs no process (the gate stands in for its data
path) and reports running until asked to quit; a container without a ``command`` whose image
the node has no copy of cannot run here and ends with ``StartError``.
"""

from __future__ import annotations

import http.server
import os
import shutil
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from stagecheck.errors import Conflict, NotFound
from stagecheck.kube.client import JsonObject
from stagecheck.sandbox.standins import images, pod_volumes
from stagecheck.sandbox.standins.base import (
    Context,
    Reconciler,
    condition,
    now,
    write_kubelet_status,
)
from stagecheck.sandbox.standins.mesh_gate import SIDECAR, MeshGateStandin
from stagecheck.sandbox.standins.pilot_agent import PilotAgentStandin, family

NODE_NAME = "standin-node-0"
PROBE_LABEL = "stagecheck.io/probe"
NAME_LABEL = "app.kubernetes.io/name"  # stagecheck's own check (deploy/'s Job) may run here
LEASE_DURATION_S = 40
LEASE_RENEW_S = 10.0
STOP_GRACE_S = 2.0
MANAGER = "standin-kubelet"
LOOPBACK = "127.0.0.1,localhost"  # the API server (KUBERNETES_SERVICE_HOST) and the pod itself


BUBBLEWRAP_MISSING = (
    "the stand-in node runs containers under bubblewrap, which is not installed on this "
    "machine (Debian: apt-get install bubblewrap; scripts/setup installs it as root)"
)


@dataclass
class _Container:
    name: str
    waiting: bool = False  # it could not be made (reason, message)
    process: subprocess.Popen[bytes] | None = None
    started: str = ""
    finished: str = ""
    exit_code: int | None = None
    reason: str = ""
    message: str = ""


@dataclass
class _Pod:
    namespace: str
    name: str
    uid: str
    folder: Path
    sidecar: bool
    containers: dict[str, _Container] = field(default_factory=dict)
    started: str = ""


class NodeStandin(Reconciler):
    """The stand-in kubelet of node ``standin-node-0``."""

    name = "kubelet-standin"

    def __init__(self, gate: MeshGateStandin, node: str = NODE_NAME) -> None:
        self.gate, self.node = gate, node
        self._pods: dict[str, _Pod] = {}
        self._server: http.server.ThreadingHTTPServer | None = None
        self._renewed = -LEASE_RENEW_S
        self._folder = Path()
        self._agent: PilotAgentStandin | None = None

    # -- serving logs -------------------------------------------------------------------------
    def start(self, ctx: Context) -> None:
        self._folder = ctx.state_dir / "standin-node"
        (self._folder / "pods").mkdir(parents=True, exist_ok=True)
        cert, key = _serving_certificate(self._folder)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        pods = self._pods

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                url = urlsplit(self.path)
                parts = url.path.strip("/").split("/")
                if len(parts) != 4 or parts[0] != "containerLogs":
                    self.send_error(404, "the stand-in kubelet serves containerLogs only")
                    return
                _, namespace, pod, container = parts
                found = next(
                    (p for p in list(pods.values()) if (p.namespace, p.name) == (namespace, pod)),
                    None,
                )
                log = found.folder / f"{container}.log" if found else None
                if log is None or not log.exists():
                    self.send_error(404, f"no log of container {container} in {namespace}/{pod}")
                    return
                text = log.read_bytes()
                tail = parse_qs(url.query).get("tailLines")
                if tail and tail[0].isdigit():
                    text = b"".join(text.splitlines(keepends=True)[-int(tail[0]) :])
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, name="kubelet logs", daemon=True).start()
        self._server = server
        self._agent = PilotAgentStandin(self._folder, self._pod_of, self._quit_sidecar)
        self._agent.start()

    def stop(self) -> None:
        if self._agent is not None:
            self._agent.stop()
        for pod in list(self._pods.values()):
            self._kill(pod)
            self.gate.close(f"{pod.namespace}/{pod.name}")
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- the sidecar's agent ------------------------------------------------------------------
    def _pod_of(self, pids: set[int]) -> str | None:
        for pod in list(self._pods.values()):
            started = [r.process.pid for r in pod.containers.values() if r.process is not None]
            if pids & family(started):
                return f"{pod.namespace}/{pod.name}"
        return None

    def _quit_sidecar(self, caller: str) -> None:
        """pilot-agent's quit: the pod's proxy and agent exit 0."""
        pod = next((p for p in self._pods.values() if f"{p.namespace}/{p.name}" == caller), None)
        proxy = pod.containers.get(SIDECAR) if pod else None
        if proxy is not None and proxy.exit_code is None:
            proxy.exit_code, proxy.reason, proxy.finished = 0, "Completed", now()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    # -- one pass -----------------------------------------------------------------------------
    def reconcile(self, ctx: Context) -> None:
        self.problem = (
            None if shutil.which("bwrap") else f"it cannot run a pod: {BUBBLEWRAP_MISSING}"
        )
        if self._agent is not None and self._agent.problem:
            self._agent.start()  # the port is another sandbox's node's, which serves ours too
        self._register(ctx)
        self._heartbeat(ctx)
        self._placement_guard(ctx)
        bound = ctx.kube.get("/api/v1/pods", {"fieldSelector": f"spec.nodeName={self.node}"})
        seen = set()
        for item in bound.get("items") or []:
            pod = {"apiVersion": "v1", "kind": "Pod", **item}  # list items carry no kind
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            if _owned_by_node(pod):
                self._report_mirror(ctx, pod)
            elif pod["metadata"].get("deletionTimestamp"):
                self._finish_deletion(ctx, pod)
            else:
                self._run(ctx, pod)
        for uid in [u for u in self._pods if u not in seen]:  # deleted from under us
            self._forget(self._pods[uid])

    def _register(self, ctx: Context) -> None:
        node: JsonObject = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node,
                "labels": {
                    "kubernetes.io/hostname": self.node,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "standin-kubelet",
                },
            },
        }
        current = ctx.kube.get_or_none(f"/api/v1/nodes/{self.node}")
        if current is None:
            current = ctx.kube.create("/api/v1/nodes", node)
            ctx.writes += 1
        previous = (current.get("status") or {}).get("conditions")
        ready = condition(
            previous, "Ready", "True", "KubeletReady", "kubelet is posting ready status"
        )
        old_ready: JsonObject = next((c for c in previous or [] if c.get("type") == "Ready"), {})
        ready["lastHeartbeatTime"] = old_ready.get("lastHeartbeatTime") or now()
        status: JsonObject = {
            "capacity": {"cpu": "2", "memory": "4Gi", "pods": "20"},
            "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "20"},
            "conditions": [ready],
            # InternalIP only: the API server tries Hostname first, and no DNS knows this node
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "standin",
                "kubeProxyVersion": "",
                "containerRuntimeVersion": "standin://bubblewrap",
                "osImage": "the sandbox host",
                "kernelVersion": os.uname().release,
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        }
        write_kubelet_status(ctx, current, status)

    def _heartbeat(self, ctx: Context) -> None:
        """Renew the node's Lease; a heartbeat is not a change of the world (not counted)."""
        if time.monotonic() - self._renewed < LEASE_RENEW_S:
            return
        node = ctx.kube.get(f"/api/v1/nodes/{self.node}")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.node,
                "namespace": "kube-node-lease",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Node", "name": self.node,
                     "uid": node["metadata"]["uid"]}
                ],
            },
            "spec": {
                "holderIdentity": self.node,
                "leaseDurationSeconds": LEASE_DURATION_S,
                "renewTime": stamp,
            },
        }  # fmt: skip
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.node}"
        ctx.kube.apply(path, lease, field_manager=MANAGER, force=True)
        self._renewed = time.monotonic()

    def _placement_guard(self, ctx: Context) -> None:
        name = f"{self.node}-placement"
        path = f"/api/v1/namespaces/kube-system/pods/{name}"
        if ctx.kube.get_or_none(path) is not None:
            return
        node = ctx.kube.get(f"/api/v1/nodes/{self.node}")
        not_a_probe = {"key": PROBE_LABEL, "operator": "DoesNotExist"}
        not_the_check = {"key": NAME_LABEL, "operator": "NotIn", "values": ["stagecheck"]}
        anti = {
            "labelSelector": {"matchExpressions": [not_a_probe, not_the_check]},
            "namespaceSelector": {},
            "topologyKey": "kubernetes.io/hostname",
        }  # fmt: skip
        guard = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": "kube-system",
                "labels": {"app.kubernetes.io/managed-by": MANAGER},
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Node", "name": self.node,
                     "uid": node["metadata"]["uid"], "controller": True}
                ],
            },
            "spec": {
                "nodeName": self.node,
                "affinity": {
                    "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [anti]}
                },
                "containers": [{"name": "placement", "image": "registry.k8s.io/pause:3.10"}],
                "tolerations": [{"operator": "Exists"}],
            },
        }  # fmt: skip
        try:
            ctx.kube.create("/api/v1/namespaces/kube-system/pods", guard)
        except Conflict:
            return
        ctx.writes += 1

    def _report_mirror(self, ctx: Context, pod: JsonObject) -> None:
        """The node's own pod runs no process; it is reported running."""
        since = (pod.get("status") or {}).get("startTime") or now()
        running = _Container("", started=since)
        status = self._status(pod, {c["name"]: ("running", running) for c in _containers(pod)})
        write_kubelet_status(ctx, pod, status)

    # -- running pods -------------------------------------------------------------------------
    def _run(self, ctx: Context, pod: JsonObject) -> None:
        uid = pod["metadata"]["uid"]
        known = self._pods.get(uid)
        if known is None and (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return  # ended before this kubelet (re)started: a kubelet never runs it again
        if known is None:
            known = self._admit(pod)
            write_kubelet_status(ctx, pod, self._status(pod, {}))  # Pending: ContainerCreating
            self._start(ctx, known, pod)
        self._poll(known)
        write_kubelet_status(ctx, pod, self._status(pod, self._states(known, pod)))

    def _admit(self, pod: JsonObject) -> _Pod:
        meta = pod["metadata"]
        folder = self._folder / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid']}"
        folder.mkdir(parents=True, exist_ok=True)
        sidecar = SIDECAR in [c["name"] for c in _containers(pod)]
        known = _Pod(meta["namespace"], meta["name"], meta["uid"], folder, sidecar)
        self._pods[meta["uid"]] = known
        return known

    def _start(self, ctx: Context, pod: _Pod, spec_pod: JsonObject) -> None:
        proxy = self.gate.open(f"{pod.namespace}/{pod.name}", lambda: pod.sidecar)
        pod.started = now()
        for container in _containers(spec_pod):
            run = _Container(container["name"], started=now())
            pod.containers[run.name] = run
            if run.name == SIDECAR:
                continue  # the gate stands in for its data path, the agent for its port
            if shutil.which("bwrap") is None:
                run.waiting, run.reason, run.message = (
                    True,
                    "CreateContainerError",
                    BUBBLEWRAP_MISSING,
                )
                continue
            image = images.known(str(container.get("image") or ""))
            command = list(container.get("command") or [])
            args = list(container.get("args") or [])
            argv = image.argv(command, args) if image else [*command, *args]
            path = os.environ.get("PATH", "/usr/bin:/bin")
            if image is not None and image.bin is not None:
                path = f"{image.bin}:{path}"
            program = shutil.which(argv[0], path=path) if argv else None
            if program is None:
                run.exit_code, run.reason, run.finished = 128, "StartError", now()
                run.message = (
                    f"the stand-in node runs a container's command with this machine's "
                    f"programs; {argv[0] if argv else 'no command (image entrypoint)'} is not one"
                )
                continue
            try:
                mounts = pod_volumes.binds(
                    ctx.kube, spec_pod, container, pod.folder, self._folder / "volumes"
                )
            except pod_volumes.MountFailed as failed:
                run.waiting, run.reason, run.message = True, "ContainerCreating", str(failed)
                continue
            env = dict(image.env) if image else {"HOME": str(pod.folder), "TMPDIR": str(pod.folder)}
            env.update(
                {e["name"]: str(e["value"]) for e in container.get("env") or [] if "value" in e}
            )
            env.update(self._service_environment(ctx))
            # The pod's network: cluster names resolve through the gate (see mesh_gate.py)
            env.update(PATH=path, http_proxy=proxy, HTTP_PROXY=proxy)
            env.update(https_proxy=proxy, HTTPS_PROXY=proxy, no_proxy=LOOPBACK, NO_PROXY=LOOPBACK)
            workdir = image.workdir if image else pod.folder
            log = (pod.folder / f"{run.name}.log").open("wb")
            run.process = subprocess.Popen(
                _confined(pod.folder, [program, *argv[1:]], mounts, workdir),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=pod.folder,
                start_new_session=True,
            )
            log.close()

    @staticmethod
    def _service_environment(ctx: Context) -> dict[str, str]:
        """What the kubelet gives every container: the API server's Service address."""
        server = urlsplit(ctx.kube.access.server if ctx.kube.access else "")
        if not server.hostname:
            return {}
        port = str(server.port or 443)
        return {"KUBERNETES_SERVICE_HOST": server.hostname, "KUBERNETES_SERVICE_PORT": port}

    def _poll(self, pod: _Pod) -> None:
        for run in pod.containers.values():
            if run.process is not None and run.exit_code is None and not run.waiting:
                code = run.process.poll()
                if code is not None:
                    run.exit_code, run.finished = code, now()
                    run.reason = "Completed" if code == 0 else "Error"

    def _states(self, pod: _Pod, spec_pod: JsonObject) -> dict[str, tuple[str, _Container | None]]:
        states: dict[str, tuple[str, _Container | None]] = {}
        for container in _containers(spec_pod):
            run = pod.containers.get(container["name"])
            if run is None:
                continue
            if run.waiting:
                states[run.name] = ("waiting", run)
                continue
            states[run.name] = ("terminated" if run.exit_code is not None else "running", run)
        return states

    def _status(
        self, pod: JsonObject, states: dict[str, tuple[str, _Container | None]]
    ) -> JsonObject:
        """The pod's status as the kubelet writes it, from its containers' states."""
        old = pod.get("status") or {}
        previous = old.get("conditions") or []
        known = self._pods.get(pod["metadata"]["uid"])
        started = (known.started if known else "") or now()
        statuses = []
        for container in _containers(pod):
            state, run = states.get(container["name"], ("waiting", None))
            if state == "waiting" and run is not None:
                shown: JsonObject = {"waiting": {"reason": run.reason, "message": run.message}}
            elif state == "waiting":
                shown = {"waiting": {"reason": "ContainerCreating"}}
            elif state == "running":
                shown = {"running": {"startedAt": run.started if run else started}}
            else:
                assert run is not None
                ended: JsonObject = {
                    "exitCode": run.exit_code,
                    "reason": run.reason,
                    "startedAt": run.started,
                    "finishedAt": run.finished,
                }
                if run.message:
                    ended["message"] = run.message
                shown = {"terminated": ended}
            statuses.append(
                {
                    "name": container["name"],
                    "image": container.get("image", ""),
                    "imageID": "",
                    "containerID": f"standin://{pod['metadata']['uid']}/{container['name']}",
                    "ready": state == "running",
                    "restartCount": 0,
                    "lastState": {},
                    "started": state == "running",
                    "state": shown,
                }
            )
        ended_all = bool(statuses) and all("terminated" in s["state"] for s in statuses)
        waiting = any("waiting" in s["state"] for s in statuses)
        if waiting or not states:
            phase = "Pending"
        elif ended_all:
            failed = any(s["state"]["terminated"]["exitCode"] != 0 for s in statuses)
            phase = "Failed" if failed else "Succeeded"
        else:
            phase = "Running"
        all_ready = bool(statuses) and all(s["ready"] for s in statuses)
        if all_ready:
            ready = ("True", "", "")
        elif ended_all:
            ready = ("False", "PodCompleted", "")
        else:
            unready = [s["name"] for s in statuses if not s["ready"]]
            ready = ("False", "ContainersNotReady", f"containers with unready status: {unready}")
        conditions = [c for c in previous if c.get("type") == "PodScheduled"]
        conditions += [
            condition(previous, "Initialized", "True"),
            condition(previous, "Ready", *ready),
            condition(previous, "ContainersReady", *ready),
        ]
        status: JsonObject = {
            "phase": phase,
            "conditions": conditions,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": old.get("startTime") or started,
            "containerStatuses": statuses,
        }
        if "qosClass" in old:
            status["qosClass"] = old["qosClass"]
        return status

    # -- ending -------------------------------------------------------------------------------
    def _finish_deletion(self, ctx: Context, pod: JsonObject) -> None:
        known = self._pods.get(pod["metadata"]["uid"])
        if known is not None:
            self._forget(known)
        meta = pod["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
        try:
            ctx.kube.delete(path, grace_period_s=0)
        except NotFound:
            return
        ctx.writes += 1

    def _forget(self, pod: _Pod) -> None:
        self._kill(pod)
        self.gate.close(f"{pod.namespace}/{pod.name}")
        self._pods.pop(pod.uid, None)
        shutil.rmtree(pod.folder, ignore_errors=True)

    def _kill(self, pod: _Pod) -> None:
        for run in pod.containers.values():
            process = run.process
            if process is None or process.poll() is not None:
                continue
            process.terminate()
            try:
                process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _containers(pod: JsonObject) -> list[JsonObject]:
    return list((pod.get("spec") or {}).get("containers") or [])


def _owned_by_node(pod: JsonObject) -> bool:
    return any(o.get("kind") == "Node" for o in pod["metadata"].get("ownerReferences") or [])


def _confined(
    folder: Path, argv: list[str], mounts: list[pod_volumes.Bind], workdir: Path
) -> list[str]:
    """``argv`` under bubblewrap: this machine's files read-only (each top-level folder bound
    into an empty root, so a volume can be mounted where the host has nothing), a private
    /tmp and /run, the pod's folder and its writable volumes writable."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise RuntimeError("the stand-in node needs bubblewrap (apt-get install bubblewrap)")
    private = ("/proc", "/dev", "/tmp", "/run")
    missing = {
        real
        for m in mounts
        if not os.path.exists(real := os.path.realpath(m.target))
        and not real.startswith(tuple(f"{p}/" for p in private))
    }
    root = _host_view("/", missing, private)
    # The pod's folder, the image's files (under /tmp in a CI clone, hidden by the private
    # /tmp otherwise) and the volumes, parents first: a volume at /tmp must not hide a
    # workdir below it, nor a workdir a volume mounted inside it.
    binds = [(str(folder), str(folder), False)]
    if workdir != folder:
        binds.append((str(workdir), str(workdir), True))
    # the path the host would resolve (/var/run is /run): bubblewrap follows no symlink
    binds += [(str(m.source), os.path.realpath(m.target), m.read_only) for m in mounts]
    volumes: list[str] = []
    for source, target, read_only in sorted(
        dict.fromkeys(binds), key=lambda b: len(Path(b[1]).parts)
    ):
        volumes += ["--ro-bind" if read_only else "--bind", source, target]
    return [
        bwrap,
        *root,
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/tmp",
        "--tmpfs", "/run",
        *volumes,
        "--unshare-pid",
        "--die-with-parent",
        "--chdir", str(workdir),
        "--",
        *argv,
    ]  # fmt: skip


def _host_view(folder: str, missing: set[str], skip: tuple[str, ...] = ()) -> list[str]:
    """bubblewrap's arguments that show this machine's ``folder`` read-only, where the mount
    points in ``missing`` can still be made: a folder on the way to one is made in the
    sandbox's own root and its entries bound one by one, everything else bound whole."""
    inside = folder.rstrip("/") + "/"
    if folder != "/" and not any(m.startswith(inside) for m in missing):
        return ["--ro-bind", folder, folder]
    view = [] if folder == "/" else ["--dir", folder]
    for entry in sorted(os.listdir(folder)):
        path = inside + entry
        if path in skip:
            continue
        if os.path.islink(path):
            view += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            view += _host_view(path, missing)
        elif os.path.exists(path):
            view += ["--ro-bind", path, path]
    return view


def _serving_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed serving certificate for the node's kubelet port (made once)."""
    cert, key = folder / "kubelet.crt", folder / "kubelet.key"
    if not (cert.exists() and key.exists()):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365",
             "-subj", "/CN=standin-node-0", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True,
            capture_output=True,
        )  # fmt: skip
    return cert, key
