"""pytest -n 2 (pytest-xdist) gives the run the serial run gave: the same verdicts, JUnit cases,
status page, Allure results and terminal summary, written once by the controller; a red
@smoke preflight still stops the run before any other scenario starts."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from stagecheck.kube.client import Kube
from tests.reporting.conftest import CANARY, FEATURES, StageRun
from tests.support import (
    ROOT,
    Run,
    junit_cases,
    run_pytest,
    summary_of,
    without_timings,
)

PREFLIGHT = str(ROOT / "tests" / "features" / "preflight")


@pytest.fixture(scope="module")
def parallel_run(stage_run: StageRun, tmp_path_factory: pytest.TempPathFactory) -> StageRun:
    """The reporting stage as stage_run ran it, on two workers."""
    tmp = tmp_path_factory.mktemp("parallel")
    reports = tmp / "reports"
    args = ["--target", f"cluster:{stage_run.context}", "--kubeconfig", str(stage_run.kubeconfig)]
    run = run_pytest(
        [*args, "-n", "2", "--continue-on-collection-errors", str(FEATURES)],
        tmp,
        env={"STAGECHECK_REPORTS": str(reports), "MINIO_SECRET_KEY": CANARY},
    )
    return StageRun(run, reports, stage_run.kubeconfig, stage_run.context)


def test_two_workers_give_the_serial_verdicts_and_exit_code(
    stage_run: StageRun, parallel_run: StageRun
) -> None:
    assert "created: 2/2 workers" in parallel_run.run.output, parallel_run.run.output[-3000:]
    assert parallel_run.run.returncode == stage_run.run.returncode == 1
    verdicts = {n: r.outcome for n, r in stage_run.run.scenarios.items()}
    assert {n: r.outcome for n, r in parallel_run.run.scenarios.items()} == verdicts


def test_two_workers_give_the_serial_reports(stage_run: StageRun, parallel_run: StageRun) -> None:
    serial, parallel = stage_run.reports, parallel_run.reports
    assert junit_cases(parallel / "junit.xml") == junit_cases(serial / "junit.xml")
    for page in ("reporting-status.md", "malformed-status.md"):
        if (serial / page).exists():
            assert without_timings((parallel / page).read_text()) == without_timings(
                (serial / page).read_text()
            ), page
    # (the serial folder may hold more: other tests render its HTML report)
    written = {"allure-results", "junit.xml", "reporting-status.md", "reporting-status.json",
               "served-kinds.json"}  # fmt: skip
    assert {p.name for p in parallel.iterdir()} - {"reporting-evidence"} == written
    evidence = sorted(p.relative_to(serial) for p in serial.rglob("*-evidence/**/*"))
    assert sorted(p.relative_to(parallel) for p in parallel.rglob("*-evidence/**/*")) == evidence
    assert summary_of(parallel_run.run.output) == summary_of(stage_run.run.output)


def test_two_workers_write_every_allure_result_once(
    stage_run: StageRun, parallel_run: StageRun
) -> None:
    def results(run: StageRun) -> list[tuple[str, str, str]]:
        return sorted((r["name"], r["status"], r["historyId"]) for r in run.allure())

    assert results(parallel_run) == results(stage_run)
    environment = (parallel_run.results / "environment.properties").read_text()
    assert environment.count("run.id=") == 1
    assert json.loads((parallel_run.results / "categories.json").read_text())


def test_under_two_workers_a_red_preflight_stops_the_run_before_the_rest(
    world: Kube, sandbox_args: list[str], tmp_path: Path
) -> None:
    """Both @smoke scenarios may run at once; no other scenario starts until they are done."""
    run: Run = run_pytest([*sandbox_args, "-n", "2", PREFLIGHT], tmp_path)
    assert run.returncode == 1, run.output[-3000:]  # red, not xdist's "interrupted" (2)
    assert run.result("The stage namespace is there").outcome == "passed"
    assert run.result("An operator's object that is missing").outcome == "failed"
    assert len(run.scenarios) == 2, run.output[-3000:]
    assert "the preflight is red (an_operators_object_that_is_missing)" in run.output
    junit = ET.parse(tmp_path / "reports" / "junit.xml").getroot()
    not_run = {
        case.get("name"): case.find("skipped").get("message")  # type: ignore[union-attr]
        for case in junit.iter("testcase")
        if case.find("skipped") is not None
    }
    assert set(not_run) == {
        "What follows from the operators > A consequence that would be red",
        "What follows from the operators > A consequence that would be green",
    }
    assert all(m.startswith("not run: the preflight is red") for m in not_run.values())
    page = (tmp_path / "reports" / "preflight-status.md").read_text()
    assert "the preflight is red" in page and "the run reaches target" not in page


def test_a_worker_that_dies_leaves_its_scenario_broken_in_the_reports(
    world: Kube, sandbox_args: list[str], tmp_path: Path
) -> None:
    crash = str(ROOT / "tests" / "features" / "parallel")
    run = run_pytest([*sandbox_args, "-n", "2", crash], tmp_path)
    assert run.returncode == 1, run.output[-3000:]
    cases = {name: verdict for name, verdict, _ in junit_cases(tmp_path / "reports" / "junit.xml")}
    assert cases == {
        "A worker that dies > A scenario whose worker dies": "error",
        "A worker that dies > A scenario that passes": "passed",
    }
    page = (tmp_path / "reports" / "parallel-status.md").read_text()
    assert "crashed while running" in page, page


def test_under_two_workers_a_run_stopped_by_maxfail_says_so(
    world: Kube, sandbox_args: list[str], tmp_path: Path
) -> None:
    run = run_pytest([*sandbox_args, "-n", "2", "-x", "--no-preflight-stop", PREFLIGHT], tmp_path)
    assert run.returncode == 2  # xdist's own ending of a run stopped early
    assert run.result("An operator's object that is missing").outcome == "failed"
    page = (tmp_path / "reports" / "preflight-status.md").read_text()
    assert "**The run stopped before checking everything:** stopping after 1 failures" in page
