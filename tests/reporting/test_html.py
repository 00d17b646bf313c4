"""scripts/report renders the run's Allure results into a report that opens from disk in
headless Chromium and shows the run's totals; it keeps history from one run to the next."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.reporting.conftest import CANARY, StageRun
from tests.support import ROOT

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=15000",
]


def report(reports: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts" / "report"), *args],
        env={**os.environ, "STAGECHECK_REPORTS": str(reports)},
        capture_output=True,
        text=True,
        timeout=600,
    )


def chromium(page: Path, profile: Path, *args: str) -> str:
    browser = shutil.which("chromium")
    assert browser, "headless Chromium is needed: apt-get install -y chromium"
    done = subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def shown_totals(dom: str) -> dict[str, int]:
    """The counts the report's header shows: Total, Failed, Broken, Passed..."""
    totals = {}
    for chunk in dom.split('data-testid="metadata-item-')[1:]:
        name, _, rest = chunk.partition('"')
        value = re.search(r'data-testid="metadata-value".*?>(\d+)<', rest)
        if value and name not in totals:
            totals[name] = int(value.group(1))
    return totals


def embedded_files(index: Path) -> dict[str, str]:
    """The data files a single-file report carries, base64, as the page loads them."""
    return dict(re.findall(r'd\("([^"]+)","([A-Za-z0-9+/=]*)"\)', index.read_text()))


def embedded(index: Path, name: str) -> Any:
    return json.loads(base64.b64decode(embedded_files(index)[name]))


def embedded_names(index: Path, prefix: str) -> list[str]:
    return [name for name in embedded_files(index) if name.startswith(prefix)]


@pytest.fixture(scope="module")
def rendered(stage_run: StageRun) -> tuple[subprocess.CompletedProcess[str], Path]:
    done = report(stage_run.reports)
    return done, stage_run.reports / "allure-report" / "index.html"


def test_the_report_opens_in_chromium_with_the_runs_totals(
    stage_run: StageRun, rendered: tuple[subprocess.CompletedProcess[str], Path], tmp_path: Path
) -> None:
    done, index = rendered
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"[report] Allure report: {index}" in done.stdout
    statuses = Counter(r["status"] for r in stage_run.allure())
    assert statuses == {"passed": 4, "failed": 3, "broken": 4}
    dom = chromium(index, tmp_path / "profile", "--dump-dom")
    assert shown_totals(dom) == {
        "total": 11,
        "new": 11,
        "failed": statuses["failed"],
        "broken": statuses["broken"],
        "passed": statuses["passed"],
    }
    assert "Docling pods are ready" in dom and "googletagmanager" not in dom
    shot = tmp_path / "report.png"
    chromium(index, tmp_path / "profile-shot", "--window-size=1400,1000", f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_the_report_carries_the_runs_categories_and_environment(
    stage_run: StageRun, rendered: tuple[subprocess.CompletedProcess[str], Path]
) -> None:
    _, index = rendered
    assert embedded(index, "widgets/statistic.json") == {
        "total": 11,
        "new": 11,
        "passed": 4,
        "failed": 3,
        "broken": 4,
    }
    categories = embedded(index, "widgets/categories.json")["nodes"].values()
    totals = {n["name"]: n["statistic"]["total"] for n in categories if n["type"] == "category"}
    assert totals == {"Product defects": 3, "Environment problems": 1, "Test defects": 3}
    environment = {
        e["name"]: e["values"] for e in embedded(index, "widgets/allure_environment.json")
    }
    assert environment["target"] == [f"cluster:{stage_run.context}"]
    assert CANARY not in index.read_text()


def test_history_grows_by_one_point_per_run_rendered(
    stage_run: StageRun, rendered: tuple[subprocess.CompletedProcess[str], Path], tmp_path: Path
) -> None:
    history = stage_run.reports / "allure-history.jsonl"
    assert len(history.read_text().splitlines()) == 1
    again = report(stage_run.reports)  # the same run again is not a new point
    assert again.returncode == 0 and len(history.read_text().splitlines()) == 1
    # A later run: the same results under another run id.
    later = tmp_path / "allure-results"
    shutil.copytree(stage_run.results, later)
    properties = later / "environment.properties"
    properties.write_text(re.sub(r"run\.id=.*", "run.id=run-later", properties.read_text()))
    output = tmp_path / "report"
    done = report(stage_run.reports, "--results", str(later), "--output", str(output))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = history.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["name"].endswith("run-later")
    # The later report knows each scenario's previous result, and draws the trend.
    index = output / "index.html"
    results = [embedded(index, name) for name in embedded_names(index, "data/test-results/")]
    assert len(results) == 11 and all(len(r["history"]) == 1 for r in results)
    charts = embedded(index, "widgets/charts.json")["general"].values()
    [dynamics] = [c["data"] for c in charts if c["type"] == "statusDynamics"]
    assert [point["statistic"]["failed"] for point in dynamics] == [3, 3]
