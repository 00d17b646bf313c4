"""The local control plane: real etcd, kube-apiserver, controller-manager and scheduler, with
kwok standing in for kubelets (nodes and the pod lifecycle). Loopback only.

    scripts/control-plane up       build once (cached by version), start, create nodes
    scripts/control-plane status   what runs, where, and whether it answers
    scripts/control-plane down     stop everything; no process and no port left behind

The kubeconfig is written to the sandbox directory, never to ~/.kube/config.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress
from functools import partial
from pathlib import Path

import httpx
import yaml

from stagecheck.config import DEFAULT_NAMESPACE, Settings, Target, load_settings
from stagecheck.errors import StagecheckError
from stagecheck.kube.client import Kube, connect
from stagecheck.sandbox.health import Check, Component, Health, report

CLUSTER_NAME = "stagecheck"
NODE_COUNT = 3
READY_TIMEOUT_S = 90
STOP_TIMEOUT_S = 10
BINARIES = {
    "KWOK_ETCD_BINARY": "etcd",
    "KWOK_KUBE_APISERVER_BINARY": "kube-apiserver",
    "KWOK_KUBE_CONTROLLER_MANAGER_BINARY": "kube-controller-manager",
    "KWOK_KUBE_SCHEDULER_BINARY": "kube-scheduler",
    "KWOK_CONTROLLER_BINARY": "kwok",
}
# Component -> the name kwokctl gives its pid and log files, its port's place in the ports file,
# and what it answers when it works. The API server's /readyz, etcd's /health and kwok's
# /healthz; the controller-manager's and the scheduler's /healthz on their secure ports (kwokctl
# lets those paths through without credentials, --authorization-always-allow-paths), which
# also turns red when they stop renewing their leader lease (their leaderElection check).
COMPONENTS = {
    "etcd": ("etcd", 0, "http", "/health"),
    "kube-apiserver": ("kube-apiserver", 2, "https", "/readyz"),
    "kube-controller-manager": ("kube-controller-manager", 3, "https", "/healthz"),
    "kube-scheduler": ("kube-scheduler", 4, "https", "/healthz"),
    "kwok": ("kwok-controller", 5, "http", "/healthz"),
}
CHECK_TIMEOUT_S = 3.0
# Every request at Metadata level: enough to prove what a run wrote, without any payload.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata"}],
}


class ControlPlane:
    """One kwok-managed control plane whose state lives in ``state_dir``."""

    def __init__(self, root: Path, state_dir: Path, name: str = CLUSTER_NAME) -> None:
        self.root, self.state, self.name = root, state_dir, name
        self.kubeconfig = state_dir / "kubeconfig"
        self.kwok_workdir = state_dir / "kwok"
        self.cluster_dir = self.kwok_workdir / "clusters" / name
        self.audit_log = self.cluster_dir / "logs" / "audit.log"
        self.ports_file = state_dir / "ports"

    def target(self, namespace: str = DEFAULT_NAMESPACE) -> Target:
        return Target("sandbox", "sandbox", self.kubeconfig, None, namespace, True)

    def connect(self) -> Kube:
        return connect(self.target())

    def answers(self) -> bool:
        try:
            self.connect().close()
        except StagecheckError:
            return False
        return True

    def up(self) -> float:
        """Start (or find running) and return the seconds it took."""
        started = time.monotonic()
        if self.answers():
            self.heal()  # a component that died (the API server may still answer) restarts
            return time.monotonic() - started
        bin_dir = binaries_dir(self.root)
        self.state.mkdir(parents=True, exist_ok=True)
        if self.cluster_dir.exists():
            # Stopped, or half-started by an interrupted run: start from a clean state.
            self.down()
        policy = self.state / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump(AUDIT_POLICY))
        self.kubeconfig.unlink(missing_ok=True)
        try:
            created = self._kwokctl(
                bin_dir, "create", "cluster", *self._create_args(policy), check=False
            )
            if created.returncode != 0:
                raise StagecheckError(
                    "kwokctl could not create the control plane:\n"
                    + (created.stdout + created.stderr)[-3000:]
                )
            kube = self._await_ready()
            try:
                for index in range(NODE_COUNT):
                    node = _node(node_name(index))
                    kube.create("/api/v1/nodes", node)
                    # Status is dropped on create; the scheduler needs capacity to place pods.
                    kube.patch(
                        f"/api/v1/nodes/{node_name(index)}/status", {"status": node["status"]}
                    )
            finally:
                kube.close()
        except BaseException:
            self.down()  # a failed or interrupted start leaves nothing running
            raise
        return time.monotonic() - started

    def _create_args(self, policy: Path) -> list[str]:
        """kwokctl flags that keep every component on loopback, on ports chosen here.

        Extra component flags go through a configuration file: kwokctl 0.8's --extra-args
        mixes up components when one has several."""
        ports = free_ports(6)
        etcd, peer, apiserver, manager, scheduler, kwok = ports
        self.ports_file.write_text(" ".join(map(str, ports)))
        extra = {
            "etcd": {
                "listen-client-urls": f"http://127.0.0.1:{etcd}",
                "advertise-client-urls": f"http://127.0.0.1:{etcd}",
                "listen-peer-urls": f"http://127.0.0.1:{peer}",
                "initial-advertise-peer-urls": f"http://127.0.0.1:{peer}",
                "initial-cluster": f"node0=http://127.0.0.1:{peer}",
            },
            "kube-apiserver": {
                "bind-address": "127.0.0.1",
                "advertise-address": "127.0.0.1",
                # The endpoint reconciler refuses a loopback address; nothing here needs it.
                "endpoint-reconciler-type": "none",
            },
            "kube-controller-manager": {"bind-address": "127.0.0.1"},
            "kube-scheduler": {"bind-address": "127.0.0.1"},
            "kwok-controller": {
                "server-address": f"127.0.0.1:{kwok}",
                # Only nodes annotated for kwok are simulated; tests keep others to themselves.
                "manage-all-nodes": "false",
                "manage-nodes-with-annotation-selector": "kwok.x-k8s.io/node=fake",
            },
        }
        config = self.state / "kwokctl.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
                    "kind": "KwokctlConfiguration",
                    "componentsPatches": [
                        {
                            "name": component,
                            "extraArgs": [{"key": k, "value": v} for k, v in flags.items()],
                        }
                        for component, flags in extra.items()
                    ],
                }
            )
        )
        return [
            f"--config={config}",
            "--runtime=binary",
            f"--kubeconfig={self.kubeconfig}",
            f"--kube-audit-policy={policy}",
            f"--etcd-port={etcd}",
            f"--kube-apiserver-port={apiserver}",
            f"--kube-controller-manager-port={manager}",
            f"--kube-scheduler-port={scheduler}",
            f"--controller-port={kwok}",
            # kwok serves port-forward and logs for its fake pods from these resources (tested
            # for real; the logs are the data plane's, container_logs.py).
            "--enable-crds=PortForward,ClusterPortForward,Logs,ClusterLogs",
            f"--wait={READY_TIMEOUT_S}s",
            "--quiet-pull",
        ]

    def _await_ready(self) -> Kube:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                kube = self.connect()
                if kube.ready():
                    return kube
                kube.close()
            except StagecheckError:
                pass
            if time.monotonic() > deadline:
                raise StagecheckError(
                    f"the API server did not become ready in {READY_TIMEOUT_S}s; "
                    f"its log: {self.cluster_dir / 'logs' / 'kube-apiserver.log'}"
                )
            time.sleep(0.25)

    def pids(self) -> list[int]:
        found = []
        for pid_file in sorted((self.cluster_dir / "pids").glob("*.pid")):
            with suppress(ValueError, OSError):
                found.append(int(pid_file.read_text().strip()))
        return found

    def components(self) -> list[Component]:
        """Each component of the control plane, checked by what it answers (not by its pid)."""
        return [Check(name, partial(self._check, name)) for name in COMPONENTS]

    def unhealthy(self) -> list[str]:
        return [c.name for c in self.components() if not c.check().healthy]

    def heal(self) -> list[str]:
        """Restart the control plane's components when any is unhealthy (kwokctl stops and
        starts them all; etcd keeps its data, so the world stays); the names that were
        unhealthy. A control plane that was never created is left to ``up``."""
        if not self.cluster_dir.exists() or not (unhealthy := self.unhealthy()):
            return []
        bin_dir = binaries_dir(self.root)
        pids = self.pids()
        self._kwokctl(bin_dir, "stop", "cluster", check=False)
        _await_exit(pids, timeout=STOP_TIMEOUT_S)
        started = self._kwokctl(bin_dir, "start", "cluster", check=False)
        if started.returncode != 0:
            raise StagecheckError(
                f"kwokctl could not restart the control plane ({', '.join(unhealthy)} were "
                "unhealthy):\n" + (started.stdout + started.stderr)[-3000:]
            )
        self._await_ready().close()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while (still := self.unhealthy()) and time.monotonic() < deadline:
            time.sleep(0.5)
        if still:
            raise StagecheckError(
                f"after a restart of the control plane, {', '.join(still)} still unhealthy; "
                f"logs: {self.cluster_dir / 'logs'}"
            )
        return unhealthy

    def _check(self, name: str) -> Health:
        stem, index, scheme, path = COMPONENTS[name]
        log = self.cluster_dir / "logs" / f"{stem}.log"
        pid_file = self.cluster_dir / "pids" / f"{stem}.pid"
        try:
            pid = int(pid_file.read_text().strip())
            port = int(self.ports_file.read_text().split()[index])
        except (OSError, ValueError, IndexError):
            return Health(False, f"not started: no {pid_file.name} or ports in {self.state}")
        if not alive(pid):
            return Health(False, f"its process {pid} is gone", log)
        url = f"{scheme}://127.0.0.1:{port}{path}"
        try:
            # Its own certificate is self-signed: only whether it answers "ok" matters here.
            answer = httpx.get(url, verify=False, timeout=CHECK_TIMEOUT_S)
        except httpx.HTTPError as error:
            return Health(False, f"pid {pid} runs but {url} does not answer: {error!r}", log)
        body = answer.text.strip()
        healthy = answer.status_code == 200 and (
            body == "ok" or (name == "etcd" and answer.json().get("health") == "true")
        )
        detail = f"{url} answers HTTP {answer.status_code}: {body[:120]!r} (pid {pid})"
        return Health(healthy, detail, None if healthy else log)

    def down(self) -> bool:
        """Stop and remove the cluster; False when there was nothing to stop."""
        if not self.cluster_dir.exists():
            return False
        pids = self.pids()
        ports = (
            [int(p) for p in self.ports_file.read_text().split()]
            if self.ports_file.exists()
            else []
        )
        self._kwokctl(binaries_dir(self.root), "delete", "cluster", check=False)
        _await_exit(pids, timeout=STOP_TIMEOUT_S)
        _await_closed(ports, timeout=STOP_TIMEOUT_S)
        self.ports_file.unlink(missing_ok=True)
        shutil.rmtree(self.cluster_dir, ignore_errors=True)
        self.kubeconfig.unlink(missing_ok=True)
        return True

    def _temp(self) -> Path:
        temp = self.state / "tmp"
        temp.mkdir(parents=True, exist_ok=True)
        return temp

    def _kwokctl(
        self, bin_dir: Path, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            # kwokctl and the clients it runs keep caches under $HOME (~/.kube/cache, ~/.kwok):
            # give them the sandbox's directory so the user's own files are never touched.
            "HOME": str(self.state),
            # Every component inherits this: their temporary files stay in the sandbox too.
            "TMPDIR": str(self._temp()),
            "KWOK_WORKDIR": str(self.kwok_workdir),
            "KWOK_RUNTIME": "binary",
        }
        env.update({var: str(bin_dir / binary) for var, binary in BINARIES.items()})
        kubectl = shutil.which("kubectl")
        if kubectl:
            env["KWOK_KUBECTL_BINARY"] = kubectl
        return subprocess.run(
            [str(bin_dir / "kwokctl"), "--name", self.name, *args],
            env=env,
            check=check,
            capture_output=True,
            text=True,
        )


def free_ports(count: int) -> list[int]:
    """Ports free on loopback right now (held open together so they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _await_exit(pids: list[int], timeout: float) -> None:
    """Wait for the processes to end; kill what is still there after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (running := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in running:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _await_closed(ports: list[int], timeout: float) -> None:
    """Wait until nothing listens on the ports any more (a server may close them last)."""
    deadline = time.monotonic() + timeout
    while [p for p in ports if _listening(p)] and time.monotonic() < deadline:
        time.sleep(0.1)


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie child counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child counts as gone.
    with suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return False
    return True


def binaries_dir(root: Path) -> Path:
    """Build (or find) the binaries; the build script prints their cached directory."""
    script = root / "scripts" / "build-control-plane"
    subprocess.run([str(script)], check=True, stdout=sys.stderr)
    found = subprocess.run([str(script), "--print-bin"], check=True, capture_output=True, text=True)
    return Path(found.stdout.strip())


def built_kustomize(root: Path) -> Path | None:
    """The sandbox's own kustomize, where ``root`` is a checkout of stagecheck that built it;
    None elsewhere (an installed stagecheck in a stage repository has no build of its own)."""
    if not (root / "scripts" / "build-control-plane").is_file():
        return None
    built = tools_dir(root) / "kustomize"
    return built if built.is_file() else None


def tools_dir(root: Path) -> Path:
    """Where the build put kustomize (built with the control plane, cached by version)."""
    script = root / "scripts" / "build-control-plane"
    found = subprocess.run(
        [str(script), "--print-tools"], check=True, capture_output=True, text=True
    )
    return Path(found.stdout.strip())


def for_settings(settings: Settings) -> ControlPlane:
    return ControlPlane(settings.root, settings.sandbox_dir)


def up(settings: Settings) -> int:
    plane = for_settings(settings)
    seconds = plane.up()
    print(
        f"control plane up ({seconds:.1f}s); kubeconfig: {plane.kubeconfig}; "
        f"audit log: {plane.audit_log}"
    )
    return 0


def down(settings: Settings) -> int:
    print(
        "control plane stopped"
        if for_settings(settings).down()
        else "control plane was not running"
    )
    return 0


def status(settings: Settings) -> int:
    """Every component checked; exit 1 when any is unhealthy or nothing runs."""
    plane = for_settings(settings)
    if not plane.cluster_dir.exists():
        print(f"control plane is not running (nothing in {plane.state})")
        return 1
    healthy, lines = report(plane.components())
    try:
        kube = plane.connect()
        try:
            version = kube.version().get("gitVersion")
            nodes = [n["metadata"]["name"] for n in kube.get("/api/v1/nodes").get("items", [])]
        finally:
            kube.close()
        print(f"control plane: Kubernetes {version}; nodes: {', '.join(nodes) or 'none'}")
    except StagecheckError as error:
        print(f"control plane: its API server does not answer using {plane.kubeconfig}: {error}")
    print("\n".join(lines))
    print(f"kubeconfig: {plane.kubeconfig}")
    print(f"audit log: {plane.audit_log}")
    print("control plane healthy" if healthy else "control plane UNHEALTHY: see above")
    return 0 if healthy else 1


def node_name(index: int) -> str:
    return f"kwok-node-{index}"


def _node(name: str) -> dict[str, object]:
    """A node that kwok manages: it stays Ready and runs every pod bound to it."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "spec": {"taints": []},
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="control-plane", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the project checkout")
    args = parser.parse_args(argv)
    settings = load_settings(root=args.root.resolve(), target_option="sandbox")
    try:
        return {"up": up, "down": down, "status": status}[args.command](settings)
    except (StagecheckError, subprocess.CalledProcessError) as error:
        print(f"control-plane {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
