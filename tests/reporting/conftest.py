"""Fixtures for the reporting tests: one run of tests/features/reporting, as a user runs a stage,
against the private control plane through a read-only cluster target whose kubeconfig and
environment carry a canary credential."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from stagecheck.kube.client import Kube
from stagecheck.sandbox.controlplane import ControlPlane
from tests.support import ROOT, Run, run_pytest, two_context_kubeconfig

CANARY = "canary-secret-8c1f2e"
FEATURES = ROOT / "tests" / "features" / "reporting"


@dataclass(frozen=True)
class StageRun:
    run: Run
    reports: Path
    kubeconfig: Path
    context: str

    @property
    def results(self) -> Path:
        return self.reports / "allure-results"

    def allure(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in self.results.glob("*-result.json")]

    def allure_result(self, name: str) -> dict[str, Any]:
        found = [r for r in self.allure() if r["name"] == name]
        assert len(found) == 1, f"{len(found)} Allure results named {name!r}"
        return found[0]


def kubeconfig_with_canary_token(path: Path) -> None:
    """A bearer token in the kubeconfig: the client certificate still authenticates."""
    config = yaml.safe_load(path.read_text())
    for user in config["users"]:
        user["user"]["token"] = CANARY
    path.write_text(yaml.safe_dump(config))


@pytest.fixture(scope="session")
def stage_run(
    control_plane: ControlPlane, world: Kube, tmp_path_factory: pytest.TempPathFactory
) -> StageRun:
    tmp = tmp_path_factory.mktemp("reporting")
    kubeconfig, context = two_context_kubeconfig(control_plane, tmp / "kubeconfig")
    kubeconfig_with_canary_token(kubeconfig)
    reports = tmp / "reports"
    args = ["--target", f"cluster:{context}", "--kubeconfig", str(kubeconfig)]
    run = run_pytest(
        [*args, "--continue-on-collection-errors", str(FEATURES)],
        tmp,
        env={"STAGECHECK_REPORTS": str(reports), "MINIO_SECRET_KEY": CANARY},
    )
    return StageRun(run, reports, kubeconfig, context)
