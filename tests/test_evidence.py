"""A red step attaches the object's YAML, its events and its pods to the Allure result,
and no credential reaches any of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stagecheck.kube.client import Kube
from stagecheck.sandbox.controlplane import ControlPlane
from tests.support import ROOT, Run, run_pytest

CANARY = "canary-secret-8c1f2e"


@pytest.fixture(scope="module")
def allure_run(
    world: Kube, control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Run, Path]:
    tmp = tmp_path_factory.mktemp("evidence")
    results = tmp / "allure-results"
    args = [
        "--target",
        "sandbox",
        "--kubeconfig",
        str(control_plane.kubeconfig),
        f"--alluredir={results}",
    ]
    run = run_pytest([*args, str(ROOT / "tests/features/kubernetes/evidence.feature")], tmp)
    return run, results


def attachments(results: Path, scenario: str) -> dict[str, str]:
    for path in results.glob("*-result.json"):
        result = json.loads(path.read_text())
        if result["name"] == scenario:
            found = result.get("attachments", []) + [
                a for s in result.get("steps", []) for a in s.get("attachments", [])
            ]
            return {a["name"]: (results / a["source"]).read_text() for a in found}
    raise AssertionError(f"no Allure result for {scenario}")


def test_a_red_step_attaches_yaml_events_and_pods(allure_run: tuple[Run, Path]) -> None:
    run, results = allure_run
    assert run.result("A pod that never becomes ready carries its evidence").outcome == "failed"
    found = attachments(results, "A pod that never becomes ready carries its evidence")
    assert "Pod private-ai-demo/docling-0.yaml" in found
    assert "kind: Pod" in found["Pod private-ai-demo/docling-0.yaml"]
    assert "events" in found
    assert "pod docling-0 is Pending" in found["related pods"]
    # Its node runs no kubelet: the log cannot be read, and the evidence says so.
    assert found["container logs"].startswith("== pod docling-0, container docling\n")
    assert "(log not available: " in found["container logs"]


def test_no_credential_reaches_the_report_or_the_terminal(allure_run: tuple[Run, Path]) -> None:
    run, results = allure_run
    assert run.result("A secret's evidence shows no value").outcome == "failed"
    secret_yaml = attachments(results, "A secret's evidence shows no value")[
        "Secret private-ai-demo/minio-credentials.yaml"
    ]
    assert "AWS_SECRET_ACCESS_KEY: <redacted>" in secret_yaml
    pod_yaml = attachments(results, "A pod that never becomes ready carries its evidence")[
        "Pod private-ai-demo/docling-0.yaml"
    ]
    # Every env value goes, whatever its name: names stay, so the reader sees what is set.
    assert "name: LOG_LEVEL" in pod_yaml and "value: debug" not in pod_yaml
    assert CANARY not in run.output
    for path in results.iterdir():
        assert CANARY not in path.read_text(errors="replace"), path.name
