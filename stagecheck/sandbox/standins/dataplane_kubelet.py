"""A stand-in kubelet for the world's pods that a data-plane process answers for: the pod's
main container IS that process, so the pod lives and dies with it.

kwok schedules and runs the world's pods by decree (Running and Ready at once, every
container). Behind each of the stage's Services (``sandbox.backends``) a real process of the
data plane answers instead; this stand-in makes the pods behind that Service tell the truth
about it, by the kubelet's rules (Kubernetes v1.3x, pkg/kubelet):

- Configuration: a service a pod configures (the model server, Llama Stack: ``Service.
  from_pod``) is started from the newest pod's main container, its ``env`` resolved as the
  kubelet resolves it (``value``; ``valueFrom`` a Secret's or ConfigMap's key, a field of the
  pod), its ``command``/``args`` and its mounts. When that pod's spec differs from what the
  process was started with (a rollout of an edited LlamaStackDistribution or
  InferenceService), the process is started again from the new pod. A variable whose Secret
  or ConfigMap (or key) is missing keeps the container from starting: waiting
  ``CreateContainerConfigError`` with the kubelet's message (``secret "x" not found``).
- Probes (pkg/kubelet/prober): the main container's ``startupProbe``, then its
  ``readinessProbe`` and ``livenessProbe``, each with its ``initialDelaySeconds`` (0),
  ``periodSeconds`` (10), ``timeoutSeconds`` (1), ``successThreshold`` (1) and
  ``failureThreshold`` (3): ``httpGet`` (200-399), ``tcpSocket`` (a connection) and ``exec`` (exit
  0, the command run with this machine's programs). Every container port of the pod is the
  process's one loopback port. Without a readiness probe the container is ready once it runs
  and its startup probe passed. A startup or liveness probe past its failure threshold kills
  the container.
- Restarts (pkg/kubelet/kuberuntime, restartPolicy Always): a container whose process ended
  shows ``terminated`` (its exit code as the runtime recorded it: 137 for SIGKILL, reason
  ``Error``, or ``Completed`` for 0), then ``waiting: CrashLoopBackOff`` with "back-off Ns
  restarting failed container=C pod=P_NS(UID)" for the back-off (10 s, doubled each restart,
  at most 300 s; reset after 10 minutes of running), then it runs again with
  ``restartCount`` + 1 and ``lastState.terminated``. Ready and ContainersReady follow the
  container (reason ``ContainersNotReady``, "containers with unready status: [C]").

Knowingly different: one process stands for every pod behind its Service (replicas > 1 share
it); the other containers of the pod (istio-proxy, queue-proxy, oauth-proxy) run nothing and
keep the status kwok gave them; kwok marks a new pod Ready at once and this stand-in corrects
it in its next pass (half a second); an ``exec`` probe runs on this machine, unconfined; no
resource limits, OOM kills, preStop hooks or termination grace. Pods on the stand-in node
(node.py) and on nodes kwok does not manage are left to their own kubelets.
"""

from __future__ import annotations

import base64
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from stagecheck.kube.client import JsonObject
from stagecheck.sandbox.backends import BACKENDS, Backend
from stagecheck.sandbox.dataplane.plan import PodConfig
from stagecheck.sandbox.standins.base import (
    Context,
    Reconciler,
    condition,
    kwok_pods,
    now,
    write_kubelet_status,
)

SIDECARS = frozenset({"istio-proxy", "queue-proxy", "oauth-proxy", "kube-rbac-proxy"})
BACKOFF_INITIAL_S, BACKOFF_MAX_S = 10.0, 300.0
BACKOFF_RESET_S = 600.0  # a container that ran this long starts its back-off anew
# No proxy: a probe goes from the node to the pod, as the kubelet's does
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ConfigError(Exception):
    """What keeps the kubelet from making the container (CreateContainerConfigError)."""


@dataclass
class _Probe:
    """One probe's state: when it is next due, its consecutive results."""

    spec: JsonObject
    due: float
    successes: int = 0
    failures: int = 0
    passed: bool = False  # successThreshold reached (and not undone by failureThreshold)
    last: str = ""  # what the last failing probe said


@dataclass
class _Container:
    """The main container of one pod, as this kubelet runs it."""

    pod_uid: str
    name: str
    started: str = ""
    started_at: float = 0.0
    running: bool = False
    restarts: int = 0
    backoff_s: float = 0.0
    backoff_until: float = 0.0
    last_terminated: JsonObject | None = None
    waiting: tuple[str, str] | None = None  # (reason, message)
    probes: dict[str, _Probe] = field(default_factory=dict)


class DataPlaneKubeletStandin(Reconciler):
    name = "dataplane-kubelet-standin"

    def __init__(self) -> None:
        self._containers: dict[str, _Container] = {}  # process -> the container it is now
        self._plane: Any = None

    def reconcile(self, ctx: Context) -> None:
        if self._plane is None:
            from stagecheck.sandbox.dataplane.processes import DataPlane

            self._plane = DataPlane(Path(), ctx.state_dir / "dataplane")
        plane = self._plane
        context = plane.context()  # None until the data plane has started
        if context is None:
            return
        nodes = {n["metadata"]["name"]: n for n in ctx.items("Node")}
        for backend in BACKENDS:
            if backend.process not in context.ports:
                continue
            service = ctx.get("Service", backend.service, backend.namespace)
            pods = kwok_pods(ctx, service, nodes) if service else []
            live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
            if not live:
                continue
            newest = max(live, key=lambda p: p["metadata"]["creationTimestamp"])
            self._run(ctx, plane, backend, newest)

    # -- one pod ------------------------------------------------------------------------------
    def _run(self, ctx: Context, plane: Any, backend: Backend, pod: JsonObject) -> None:
        main = _main_container(pod)
        if main is None:
            return
        uid = pod["metadata"]["uid"]
        known = self._containers.get(backend.process)
        if known is None or known.pod_uid != uid:
            known = _Container(uid, main["name"])
            self._containers[backend.process] = known
        service = _service(backend.process)
        record = plane.supervisor.records().get(backend.process)
        try:
            config = pod_config(ctx, pod, main)
        except ConfigError as error:
            known.waiting, known.running = ("CreateContainerConfigError", str(error)), False
            self._write(ctx, pod, main, known)
            return
        if known.waiting is not None and known.waiting[0] == "CreateContainerConfigError":
            known.waiting = None  # what it needed exists now: the kubelet makes it
        if service.from_pod is not None and not known.running and known.waiting is None:
            # a new pod, or one whose config could not be made before
            pod_name = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
            if plane.start_from_pod(backend.process, config, f"pod {pod_name} configures it"):
                record = plane.supervisor.records().get(backend.process)
            self._started(known, main)
        elif record is not None and not known.running and known.waiting is None:
            self._started(known, main)  # the process the data plane started for it
        if record is None:
            return  # nothing runs for it yet (the data plane starts it later)
        alive = bool(plane.supervisor.members(record))
        if known.running and not alive:
            self._ended(known, plane.supervisor.exit_code(backend.process))
        elif known.running:
            self._probe(known, main, backend, plane, record)
        elif (
            known.waiting
            and known.waiting[0] == "CrashLoopBackOff"
            and (time.monotonic() >= known.backoff_until)
        ):
            self._restart(plane, backend, config, known, main)
        self._write(ctx, pod, main, known)

    def _started(self, known: _Container, main: JsonObject) -> None:
        known.running, known.waiting = True, None
        known.started, known.started_at = now(), time.monotonic()
        known.probes = {
            kind: _Probe(main[kind], time.monotonic() + _n(main[kind], "initialDelaySeconds", 0))
            for kind in ("startupProbe", "readinessProbe", "livenessProbe")
            if main.get(kind)
        }

    def _ended(self, known: _Container, code: int | None) -> None:
        ran = time.monotonic() - known.started_at
        known.running = False
        reason = "Completed" if code == 0 else "Error"
        known.last_terminated = {
            "exitCode": 137 if code is None else code,
            "reason": reason if code is not None else "ContainerStatusUnknown",
            "startedAt": known.started,
            "finishedAt": now(),
        }
        if ran >= BACKOFF_RESET_S or known.backoff_s == 0:
            known.backoff_s = BACKOFF_INITIAL_S
        else:
            known.backoff_s = min(known.backoff_s * 2, BACKOFF_MAX_S)
        known.backoff_until = time.monotonic() + known.backoff_s
        known.waiting = (
            "CrashLoopBackOff",
            f"back-off {known.backoff_s:.0f}s restarting failed container={known.name} pod=",
        )

    def _restart(
        self, plane: Any, backend: Backend, config: PodConfig, known: _Container, main: JsonObject
    ) -> None:
        service = _service(backend.process)
        if service.from_pod is not None:
            spec = service.from_pod(plane.context(), config)
            from stagecheck.sandbox.dataplane.plan import LOOPBACK_ENV

            plane.supervisor.relaunch(
                backend.process,
                spec.argv,
                {**LOOPBACK_ENV, **spec.env},
                f"the kubelet restarts container {known.name} after its back-off",
            )
            plane.supervisor.annotate(
                backend.process, pod=config.fingerprint(), pod_name=config.pod
            )
        else:
            plane.supervisor.restart(backend.process)
        known.restarts += 1
        self._started(known, main)

    def _kill(self, plane: Any, backend: Backend, known: _Container, why: str) -> None:
        record = plane.supervisor.records().get(backend.process)
        if record is not None:
            with plane.supervisor.log(backend.process).open("ab") as log:
                log.write(f"\n--- the kubelet kills container {known.name}: {why} ---\n".encode())
            plane.supervisor.stop_group(record)
        self._ended(known, plane.supervisor.exit_code(backend.process))

    # -- probes -------------------------------------------------------------------------------
    def _probe(
        self, known: _Container, main: JsonObject, backend: Backend, plane: Any, record: Any
    ) -> None:
        port = urlsplit(str(record["url"])).port or 80
        clock = time.monotonic()
        startup = known.probes.get("startupProbe")
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = known.probes.get(kind)
            if probe is None or clock < probe.due:
                continue
            if kind != "startupProbe" and startup is not None and not startup.passed:
                continue  # the others start once the startup probe passed
            if kind == "startupProbe" and probe.passed:
                continue
            probe.due = clock + _n(probe.spec, "periodSeconds", 10)
            ok, said = run_probe(probe.spec, main, port)
            if ok:
                probe.successes, probe.failures = probe.successes + 1, 0
                probe.passed = probe.passed or probe.successes >= _n(
                    probe.spec, "successThreshold", 1
                )
                continue
            probe.successes, probe.failures, probe.last = 0, probe.failures + 1, said
            if probe.failures >= _n(probe.spec, "failureThreshold", 3):
                if kind == "readinessProbe":
                    probe.passed = False
                else:
                    name = "Startup" if kind == "startupProbe" else "Liveness"
                    self._kill(plane, backend, known, f"{name} probe failed: {said}")
                    return

    def ready(self, known: _Container) -> bool:
        if not known.running:
            return False
        startup = known.probes.get("startupProbe")
        if startup is not None and not startup.passed:
            return False
        readiness = known.probes.get("readinessProbe")
        return readiness is None or readiness.passed

    # -- the pod's status ---------------------------------------------------------------------
    def _write(self, ctx: Context, pod: JsonObject, main: JsonObject, known: _Container) -> None:
        old = pod.get("status") or {}
        if old.get("phase") != "Running" and not old.get("podIP"):
            return  # kwok has not started it yet: its own stage would overwrite ours
        meta = pod["metadata"]
        ready = self.ready(known)
        if known.running:
            state: JsonObject = {"running": {"startedAt": known.started}}
        elif known.waiting is not None:
            reason, message = known.waiting
            if reason == "CrashLoopBackOff":
                message += f"{meta['name']}_{meta['namespace']}({meta['uid']})"
            state = {"waiting": {"reason": reason, "message": message}}
        else:
            state = {"waiting": {"reason": "ContainerCreating"}}
        mine: JsonObject = {
            "name": main["name"],
            "image": main.get("image", ""),
            "imageID": "",
            "ready": ready,
            "restartCount": known.restarts,
            "started": known.running
            and ("startupProbe" not in known.probes or known.probes["startupProbe"].passed),
            "state": state,
            "lastState": {"terminated": known.last_terminated} if known.last_terminated else {},
        }
        others = [s for s in old.get("containerStatuses") or [] if s.get("name") != main["name"]]
        statuses = sorted([mine, *others], key=lambda s: str(s.get("name")))
        unready = sorted(str(s["name"]) for s in statuses if not s.get("ready"))
        previous = old.get("conditions") or []
        flag = ("True", "", "") if not unready else (
            "False", "ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]"
        )  # fmt: skip
        conditions = [c for c in previous if c.get("type") not in ("Ready", "ContainersReady")]
        conditions += [
            _kept(previous, condition(previous, "Ready", *flag)),
            _kept(previous, condition(previous, "ContainersReady", *flag)),
        ]
        status = {**old, "phase": "Running", "conditions": conditions}
        status["containerStatuses"] = statuses
        write_kubelet_status(ctx, pod, status)


def _kept(previous: list[JsonObject], made: JsonObject) -> JsonObject:
    """kwok writes ``lastProbeTime: null``; kept as written, so an unchanged status compares
    equal."""
    old = next((c for c in previous if c.get("type") == made["type"]), None)
    if old is not None and "lastProbeTime" in old:
        made["lastProbeTime"] = old["lastProbeTime"]
    return made


# -- probes ---------------------------------------------------------------------------------
def run_probe(spec: JsonObject, container: JsonObject, port: int) -> tuple[bool, str]:
    """One probe of the process behind ``port``: (passed, what a failure said)."""
    timeout = float(_n(spec, "timeoutSeconds", 1))
    if "httpGet" in spec:
        get = spec["httpGet"]
        url = f"http://127.0.0.1:{port}{get.get('path') or '/'}"
        try:
            with _OPENER.open(urllib.request.Request(url), timeout=timeout) as reply:
                code = reply.status
        except urllib.error.HTTPError as error:
            code = error.code
        except (OSError, ValueError) as error:
            return False, f'Get "{url}": {error}'
        return (200 <= code < 400), f"HTTP probe failed with statuscode: {code}"
    if "tcpSocket" in spec:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout):
                return True, ""
        except OSError as error:
            return False, f"dial tcp 127.0.0.1:{port}: {error}"
    if "exec" in spec:
        argv = [str(a) for a in (spec["exec"].get("command") or [])]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            return False, f"exec {argv}: {error}"
        said = (done.stdout + done.stderr).decode(errors="replace").strip()[:200]
        return done.returncode == 0, said or f"exit code {done.returncode}"
    return True, ""  # grpc and others: not modelled, taken as passing


def _n(spec: JsonObject, key: str, default: int) -> int:
    value = spec.get(key)
    return int(value) if isinstance(value, int) and value > 0 else default


# -- the pod's configuration, as the kubelet resolves it -----------------------------------
def pod_config(ctx: Context, pod: JsonObject, container: JsonObject) -> PodConfig:
    """The container's variables, command, arguments and mounts; ConfigError when a Secret or
    ConfigMap a variable or volume needs is missing (the kubelet's own message)."""
    meta = pod["metadata"]
    namespace = meta["namespace"]
    env: dict[str, str] = {}
    for item in container.get("env") or []:
        if "valueFrom" not in item:
            env[item["name"]] = _expand(str(item.get("value") or ""), env)
            continue
        source = item["valueFrom"]
        if "fieldRef" in source:
            env[item["name"]] = _field(pod, str(source["fieldRef"].get("fieldPath") or ""))
        elif "secretKeyRef" in source or "configMapKeyRef" in source:
            value = _key(ctx, namespace, source)
            if value is not None:
                env[item["name"]] = value
    volumes = {v["name"]: v for v in (pod.get("spec") or {}).get("volumes") or []}
    mounts: dict[str, tuple[str, bool]] = {}
    files: dict[str, str] = {}
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"]) or {}
        path = str(mount["mountPath"])
        kind, data = _volume(ctx, namespace, volume)
        read_only = bool(mount.get("readOnly")) or kind.split(":")[0] in ("configMap", "secret")
        mounts[path] = (kind, read_only)
        sub = mount.get("subPath")
        for key, content in data.items():
            if sub and key == sub:
                files[path] = content
            elif not sub:
                files[f"{path.rstrip('/')}/{key}"] = content
    return PodConfig(
        f"{namespace}/{meta['name']}",
        env,
        tuple(str(a) for a in container.get("command") or []),
        tuple(_expand(str(a), env) for a in container.get("args") or []),
        mounts,
        files,
    )


def _expand(text: str, env: dict[str, str]) -> str:
    """``$(VAR)`` references to variables defined before, as the kubelet expands them."""
    for name, value in env.items():
        text = text.replace(f"$({name})", value)
    return text


def _field(pod: JsonObject, path: str) -> str:
    meta = pod["metadata"]
    fields = {
        "metadata.name": meta["name"],
        "metadata.namespace": meta["namespace"],
        "metadata.uid": meta["uid"],
        "spec.nodeName": (pod.get("spec") or {}).get("nodeName") or "",
        "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName") or "",
        "status.podIP": (pod.get("status") or {}).get("podIP") or "",
    }
    return str(fields.get(path, ""))


def _key(ctx: Context, namespace: str, source: JsonObject) -> str | None:
    secret = "secretKeyRef" in source
    ref = source["secretKeyRef" if secret else "configMapKeyRef"]
    kind = "Secret" if secret else "ConfigMap"
    found = ctx.get(kind, str(ref.get("name")), namespace)
    optional = bool(ref.get("optional"))
    if found is None:
        if optional:
            return None
        raise ConfigError(f'{kind.lower()} "{ref.get("name")}" not found')
    data = found.get("data") or {}
    if ref.get("key") not in data:
        if optional:
            return None
        raise ConfigError(
            f"couldn't find key {ref.get('key')} in {kind} {namespace}/{ref.get('name')}"
        )
    value = str(data[ref["key"]])
    return base64.b64decode(value).decode(errors="replace") if secret else value


def _volume(ctx: Context, namespace: str, volume: JsonObject) -> tuple[str, dict[str, str]]:
    """(what the volume is, the files it holds when it is a ConfigMap or Secret)."""
    for kind in ("configMap", "secret"):
        if kind in volume:
            name = str(volume[kind].get("name" if kind == "configMap" else "secretName"))
            found = ctx.get("ConfigMap" if kind == "configMap" else "Secret", name, namespace)
            if found is None:
                if volume[kind].get("optional"):
                    return f"{kind}:{name}", {}
                raise ConfigError(f'{kind.lower()} "{name}" not found')
            data = {str(k): str(v) for k, v in (found.get("data") or {}).items()}
            if kind == "secret":
                data = {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}
            return f"{kind}:{name}", data
    for kind in ("emptyDir", "persistentVolumeClaim"):
        if kind in volume:
            return kind, {}
    return next(iter(k for k in volume if k != "name"), "unknown"), {}


# -- the world ------------------------------------------------------------------------------
def _service(process: str) -> Any:
    from stagecheck.sandbox.dataplane.services import BY_NAME

    return BY_NAME[process]


def _main_container(pod: JsonObject) -> JsonObject | None:
    containers = (pod.get("spec") or {}).get("containers") or []
    return next((c for c in containers if c.get("name") not in SIDECARS), None)
