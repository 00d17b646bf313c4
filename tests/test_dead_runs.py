"""Runs that meet: a run never touches what another live run created, and what a run killed
outright (SIGKILL: no cleanup of its own) is reported and removed by the next run, through the
lease and journal it kept in the cluster."""

from __future__ import annotations

import datetime
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from stagecheck.engine.runs import ENDED, why_dead
from stagecheck.kube.client import JsonObject, Kube
from stagecheck.sandbox.controlplane import ControlPlane
from tests.support import ROOT, run_id, run_pytest

NS = "private-ai-demo"
DEPLOYMENT = f"/apis/apps/v1/namespaces/{NS}/deployments/waits-for-gpu"
SETTINGS = f"/api/v1/namespaces/{NS}/configmaps/interrupted-settings"
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"
SECOND = str(ROOT / "tests/features/provisioning/concurrent.feature")


def start_slow_run(plane: ControlPlane) -> subprocess.Popen[str]:
    """A run that applies the slow set and then waits 5 minutes for it to become available."""
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--target", "sandbox",
         "--kubeconfig", str(plane.kubeconfig),
         str(ROOT / "tests/features/provisioning/interrupted.feature")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=os.environ.copy(),
    )  # fmt: skip


def labels(kube: Kube, path: str) -> dict[str, str]:
    return dict(kube.get(path)["metadata"].get("labels") or {})


def stagecheck_leases(kube: Kube) -> list[str]:
    found = kube.get(LEASES, {"labelSelector": "app.kubernetes.io/managed-by=stagecheck"})
    return [item["metadata"]["name"] for item in found["items"]]


def test_a_second_run_refuses_a_live_runs_objects_and_sweeps_a_killed_runs(
    control_plane: ControlPlane, world: Kube, tmp_path: Path
) -> None:
    first = start_slow_run(control_plane)
    try:
        deadline = time.monotonic() + 60
        while world.get_or_none(DEPLOYMENT) is None:
            assert time.monotonic() < deadline and first.poll() is None, "nothing was applied"
            time.sleep(0.2)
        owner = labels(world, DEPLOYMENT)["stagecheck.io/run"]
        # The journal is in the cluster before the change: what a hard kill would leave.
        leases = stagecheck_leases(world)
        assert leases == [f"stagecheck-{owner}-main"], leases

        second = run_pytest(
            ["--target", "sandbox", "--kubeconfig", str(control_plane.kubeconfig), SECOND],
            tmp_path,
        )
        refused = second.result("The slow set is applied by a second run")
        assert refused.outcome == "failed"
        assert f"was created by run {owner}, which is still running" in refused.message
        # Nothing of the live run's was touched: its label, its objects, its lease.
        assert labels(world, DEPLOYMENT)["stagecheck.io/run"] == owner
        assert labels(world, SETTINGS)["stagecheck.io/run"] == owner
        assert stagecheck_leases(world) == leases
    finally:
        first.send_signal(signal.SIGKILL)  # no cleanup of its own: the journal must tell
        first.communicate(timeout=30)
    assert world.get_or_none(DEPLOYMENT) is not None  # left behind by the kill

    third = run_pytest(
        ["--target", "sandbox", "--kubeconfig", str(control_plane.kubeconfig), SECOND, "-rA"],
        tmp_path,
    )
    result = third.result("The slow set is applied by a second run")
    assert result.outcome == "passed", result.message + third.output[-3000:]
    assert f"run {owner} (its process" in third.output, third.output[-3000:]
    assert "is gone) left: " in third.output
    assert "ConfigMap private-ai-demo/interrupted-settings" in third.output
    assert "Deployment private-ai-demo/waits-for-gpu; removed" in third.output
    # The third run made its own objects, removed them, and left no lease behind either.
    assert world.get_or_none(DEPLOYMENT) is None
    assert world.get_or_none(SETTINGS) is None
    assert stagecheck_leases(world) == [], run_id(third.output)


def lease(renewed_s_ago: float, holder: str = "elsewhere/1", **annotations: str) -> JsonObject:
    renewed = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=renewed_s_ago)
    return {
        "metadata": {"annotations": annotations},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 60,
            "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
    }


def test_a_run_is_dead_when_its_lease_ends_expires_or_its_process_is_gone() -> None:
    assert why_dead(lease(5)) is None
    assert why_dead(lease(5, holder=f"{socket.gethostname()}/{os.getpid()}")) is None
    expired = why_dead(lease(75))
    assert expired is not None and "was not renewed for 75 s (lease 60 s)" in expired
    ended = why_dead(lease(5, **{ENDED: "2026-12-03T12:00:00Z"}))
    assert ended is not None and "ended at 2026-12-03T12:00:00Z" in ended
    child = subprocess.Popen(["true"])
    child.wait()  # ended: its pid is free
    dead = why_dead(lease(5, holder=f"{socket.gethostname()}/{child.pid}"))
    assert dead is not None and "is gone" in dead
