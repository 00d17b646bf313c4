"""A worker's records reach the xdist controller whole: failure, evidence, times, attempts."""

from __future__ import annotations

from datetime import UTC, datetime

from stagecheck.engine.outcome import Evidence, Observation, StepFailure
from stagecheck.reporting.records import (
    Attempt,
    ScenarioRecord,
    records_from_text,
    records_to_text,
)


def test_records_survive_the_trip_from_a_worker() -> None:
    since = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    failure = StepFailure(
        "Deployment private-ai-demo/milvus-standalone",
        "1/1 replicas ready",
        Observation(ok=False, actual="0/1", since=since, cause="CrashLoopBackOff", terminal="x"),
        waited=3.5,
        evidence=[Evidence("deployment.yaml", "kind: Deployment\n", "application/yaml")],
        highlights=["container milvus waiting: CrashLoopBackOff"],
    )
    record = ScenarioRecord(
        nodeid="features/stage2/milvus.feature::test_x[a]",
        stage="stage2",
        feature="Milvus",
        feature_file="features/stage2/milvus.feature",
        scenario="x",
        line=7,
        components=("milvus",),
        tags=("milvus", "smoke"),
        example={"name": "a"},
        example_number=1,
        status="failed",
        message="stagecheck.engine.outcome.StepFailure: ...",
        failed_step="Then the deployment is available",
        failed_line=9,
        failure=failure,
        evidence=list(failure.evidence),
        seconds=4.25,
        attempts=[
            Attempt(1, 2, "failed", "a cause", 2.0, "a service did not answer (transient)"),
            Attempt(2, 2, "failed", "a cause", 2.25),
        ],
    )
    plain = ScenarioRecord("n", "s", "f", "f.feature", "s", 1, (), ())
    back = records_from_text(records_to_text([record, plain]))
    assert back[1] == plain
    got = back[0]
    assert got.failure is not None and str(got.failure) == str(failure)
    assert got.failure.observation == failure.observation  # since: a datetime again
    got.failure, record.failure = None, None  # an exception compares by identity
    assert got == record
