"""The status page remembers each component's state between runs: "since" spans runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from stagecheck.engine.outcome import Observation, StepFailure
from stagecheck.reporting.records import RunRecord, ScenarioRecord
from stagecheck.reporting.status_page import StagePage, write_stage_page

ENVIRONMENT = {"target": "sandbox", "namespace": "private-ai-demo", "run.id": "run-1"}


def record(component: str, status: str, failure: StepFailure | None = None) -> ScenarioRecord:
    return ScenarioRecord(
        nodeid=f"features/stage9/{component}.feature::test_it",
        stage="stage9",
        feature=f"{component} feature",
        feature_file=f"features/stage9/{component}.feature",
        scenario="it works",
        line=3,
        components=(component,),
        tags=(component,),
        status=status,  # type: ignore[arg-type]
        message="stagecheck.engine.outcome.StepFailure: x" if failure else "",
        failure=failure,
    )


def page_after(tmp_path: Path, at: datetime, records: list[ScenarioRecord]) -> str:
    where = StagePage("stage9", tmp_path, tmp_path, "sandbox", None)
    run = RunRecord(started=at, finished=at, scenarios={r.nodeid: r for r in records})
    return write_stage_page(where, records, run, ENVIRONMENT).read_text(encoding="utf-8")


def row(page: str, component: str) -> str:
    return next(line for line in page.splitlines() if line.startswith(f"| {component} |"))


def test_since_counts_the_runs_a_component_kept_its_state(tmp_path: Path) -> None:
    first = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    page_after(tmp_path, first, [record("milvus", "passed")])
    page = page_after(tmp_path, first + timedelta(days=1), [record("milvus", "passed")])
    assert row(page, "milvus").endswith("| 2026-11-01 08:00 UTC (2 runs in a row) |")
    page = page_after(tmp_path, first + timedelta(days=2), [record("milvus", "broken")])
    assert "⚠️ unchecked" in row(page, "milvus") and row(page, "milvus").endswith("| this run |")


def test_a_failure_is_dated_by_what_the_cluster_reports(tmp_path: Path) -> None:
    since = datetime(2026, 10, 30, 12, 0, tzinfo=UTC)
    failure = StepFailure(
        subject="Deployment private-ai-demo/milvus",
        expected="Available=True",
        observation=Observation(ok=False, actual="Available=False", since=since),
    )
    page = page_after(tmp_path, since + timedelta(days=3), [record("milvus", "failed", failure)])
    assert row(page, "milvus").startswith("| milvus | ❌ failing | 0/1 |")
    assert "2026-10-30 12:00 UTC (" in row(page, "milvus")
    assert "- **Since:** 2026-10-30 12:00 UTC" in page


def test_components_this_run_did_not_check_show_as_last_checked(tmp_path: Path) -> None:
    (tmp_path / "features" / "stage9").mkdir(parents=True)
    for name in ("milvus", "mesh"):
        (tmp_path / "features" / "stage9" / f"{name}.feature").write_text(f"@{name}\n")
    first = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    page_after(tmp_path, first, [record("milvus", "passed"), record("mesh", "passed")])
    page = page_after(tmp_path, first + timedelta(hours=1), [record("mesh", "passed")])
    table = page.split("### Not checked by this run: as last checked", 1)[1]
    assert (
        "| milvus | ✅ passing | 1/1 | milvus feature | 2026-11-01 08:00 UTC, run `run-1` |"
        in table
    )
    assert "| mesh |" not in table
    (tmp_path / "features" / "stage9" / "milvus.feature").unlink()  # gone from the stage
    page = page_after(tmp_path, first + timedelta(hours=2), [record("mesh", "passed")])
    assert "Not checked by this run" not in page
