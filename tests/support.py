"""Helpers for the framework's own tests: apply a world of objects, run features in a
sub-process the way a user would, and read back each scenario's outcome and message."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from pytest_bdd.scenario import make_python_name

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class ScenarioResult:
    outcome: str  # passed, failed, error, skipped
    message: str
    seconds: float


@dataclass(frozen=True)
class Run:
    returncode: int
    output: str
    scenarios: dict[str, ScenarioResult]
    seconds: float

    def result(self, scenario: str) -> ScenarioResult:
        return self.scenarios[make_python_name(scenario)]


def run_pytest(args: list[str], tmp: Path, env: dict[str, str] | None = None) -> Run:
    """Run ``pytest ARGS`` from the project root as a user would, with a JUnit file to read."""
    junit = tmp / f"junit-{time.monotonic_ns()}.xml"
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.monotonic() - started
    scenarios = _read_junit(junit) if junit.exists() else {}
    return Run(completed.returncode, completed.stdout + completed.stderr, scenarios, seconds)


def _read_junit(path: Path) -> dict[str, ScenarioResult]:
    found: dict[str, ScenarioResult] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        if not case.get("name"):
            continue  # pytest writes a nameless case when a run is stopped before any test
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
                message = (node.text or node.get("message") or "").strip()
        name = case.get("name", "")
        name = name.removeprefix("test_").split("[", 1)[0]
        found[name] = ScenarioResult(outcome, message, float(case.get("time", 0)))
    return found
