"""The local control plane: real components, loopback only, idempotent up, clean down."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest

from stagecheck.config import Settings
from stagecheck.kube.client import Kube
from stagecheck.sandbox.controlplane import ControlPlane
from tests.support import ROOT


def listening_ports(pids: list[int]) -> set[tuple[str, int]]:
    found = set()
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
            found.add((conn.laddr.ip, conn.laddr.port))
    return found


def test_it_runs_real_components_on_loopback_only(control_plane: ControlPlane, kube: Kube) -> None:
    pids = control_plane.pids()
    names = {Path(psutil.Process(pid).exe()).name for pid in pids}
    assert names == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}
    addresses = listening_ports(pids)
    assert addresses, "the components listen somewhere"
    assert {ip for ip, _ in addresses} == {"127.0.0.1"}
    assert kube.version()["gitVersion"].startswith("v1.")


def test_kwok_nodes_are_ready(kube: Kube) -> None:
    nodes = kube.get("/api/v1/nodes", {"labelSelector": "type=kwok"})["items"]
    assert len(nodes) == 3
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        nodes = kube.get("/api/v1/nodes", {"labelSelector": "type=kwok"})["items"]
        ready = [
            n
            for n in nodes
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n["status"].get("conditions", [])
            )
        ]
        if len(ready) == 3:
            return
        time.sleep(0.5)
    pytest.fail(f"kwok nodes not Ready: {[n['status'].get('conditions') for n in nodes]}")


def test_up_twice_is_harmless(control_plane: ControlPlane) -> None:
    pids = control_plane.pids()
    control_plane.up()
    assert control_plane.pids() == pids
    assert control_plane.answers()


def test_down_leaves_no_process_and_no_port(tmp_path_factory: pytest.TempPathFactory) -> None:
    plane = ControlPlane(ROOT, tmp_path_factory.mktemp("short-lived"), name="stagecheck-short")
    plane.up()
    pids = plane.pids()
    ports = {port for _, port in listening_ports(pids)}
    assert len(pids) == 5 and ports
    assert plane.down()
    assert not [
        p
        for p in pids
        if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    ]
    still = {
        c.laddr.port for c in psutil.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN
    }
    assert not ports & still
    assert not plane.kubeconfig.exists()
    assert not plane.down(), "a second down has nothing to stop"


def test_the_command_line_reports_status_and_never_touches_the_user_kubeconfig(
    tmp_path: Path, settings: Settings
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "STAGECHECK_CACHE": str(settings.cache_dir),  # the built binaries, not a rebuild
        "STAGECHECK_SANDBOX_DIR": str(tmp_path / "sandbox"),
    }
    script = str(ROOT / "scripts" / "control-plane")
    status = subprocess.run([script, "status"], env=env, capture_output=True, text=True)
    assert status.returncode == 1
    assert "control plane is not running" in status.stdout
    try:
        up = subprocess.run([script, "up"], env=env, capture_output=True, text=True, timeout=300)
        assert up.returncode == 0, up.stderr
        assert "control plane up" in up.stdout
        status = subprocess.run([script, "status"], env=env, capture_output=True, text=True)
        assert status.returncode == 0, status.stdout
        assert "Kubernetes v1.37" in status.stdout and "kwok-node-0" in status.stdout
        assert "control plane healthy" in status.stdout
        assert not (home / ".kube").exists()
    finally:
        down = subprocess.run(
            [script, "down"], env=env, capture_output=True, text=True, timeout=120
        )
    assert "control plane stopped" in down.stdout


def test_status_names_a_dead_or_frozen_component_and_heal_restarts_it(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings
) -> None:
    """What was seen for real: after the API server froze, the scheduler and the controller-
    manager exited while a pid-only status said healthy. A stopped (frozen) scheduler is red
    because its /healthz does not answer; a killed one because it is gone, with its last log
    lines; heal restarts the components and keeps the world."""
    state = tmp_path_factory.mktemp("healing")
    plane = ControlPlane(ROOT, state)  # the name the command line uses
    env = {
        **os.environ,
        "STAGECHECK_CACHE": str(settings.cache_dir),
        "STAGECHECK_SANDBOX_DIR": str(state),
    }
    script = str(ROOT / "scripts" / "control-plane")
    try:
        plane.up()
        assert plane.unhealthy() == []
        healthy = subprocess.run([script, "status"], env=env, capture_output=True, text=True)
        assert healthy.returncode == 0, healthy.stdout
        assert "kube-scheduler           healthy" in healthy.stdout
        scheduler = int((plane.cluster_dir / "pids" / "kube-scheduler.pid").read_text())

        os.kill(scheduler, signal.SIGSTOP)  # alive, but answers nothing
        try:
            assert plane.unhealthy() == ["kube-scheduler"]
        finally:
            os.kill(scheduler, signal.SIGCONT)

        os.kill(scheduler, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while psutil.pid_exists(scheduler) and time.monotonic() < deadline:
            time.sleep(0.1)
        red = subprocess.run([script, "status"], env=env, capture_output=True, text=True)
        assert red.returncode == 1, red.stdout
        assert f"kube-scheduler           UNHEALTHY its process {scheduler} is gone" in red.stdout
        assert "last 8 lines of" in red.stdout and "kube-scheduler.log" in red.stdout
        assert "kube-apiserver           healthy" in red.stdout

        assert plane.heal() == ["kube-scheduler"]
        assert plane.unhealthy() == []
        kube = plane.connect()
        try:
            assert len(kube.get("/api/v1/nodes")["items"]) == 3, "the world stays"
        finally:
            kube.close()
        assert plane.heal() == []
    finally:
        plane.down()
