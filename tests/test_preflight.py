"""The @smoke preflight runs first; when it is red the run stops with one message, and the
reports say which scenarios were not run and why."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from stagecheck.kube.client import Kube
from tests.support import ROOT, run_pytest

FEATURES = str(ROOT / "tests" / "features" / "preflight")
RED_PREFLIGHT = "An operator's object that is missing"


def test_a_red_preflight_stops_the_run_with_one_message(
    world: Kube, sandbox_args: list[str], tmp_path: Path
) -> None:
    run = run_pytest([*sandbox_args, FEATURES], tmp_path)
    assert run.returncode == 1
    assert run.result("The stage namespace is there").outcome == "passed"
    assert run.result(RED_PREFLIGHT).outcome == "failed"
    assert len(run.scenarios) == 2  # the two smoke scenarios ran, first; nothing else did
    assert run.output.count("the preflight is red (an_operators_object_that_is_missing)") >= 1
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


def test_every_scenario_runs_when_asked(
    world: Kube, sandbox_args: list[str], tmp_path: Path
) -> None:
    run = run_pytest([*sandbox_args, "--no-preflight-stop", FEATURES], tmp_path)
    assert run.result("A consequence that would be green").outcome == "passed"
    assert run.result("A consequence that would be red").outcome == "failed"
