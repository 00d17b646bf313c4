"""Bounded retries: a scenario tagged @flaky-by-nature, or a run with --retries N, is tried
again only when its red is of a kind that can go away (stagecheck.retries); each attempt is in
Allure (one history, the earlier ones as retries), on the status page and the terminal, JUnit
keeps one case with the last attempt's verdict, and the exit code follows the last verdicts."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import pytest

from stagecheck.engine.outcome import Observation, StepFailure
from stagecheck.errors import (
    BadArgument,
    ConfigError,
    Forbidden,
    KubeApiError,
    NotFound,
    ServerNotTrusted,
    StagecheckError,
    TargetUnreachable,
)
from stagecheck.kube.client import Kube
from stagecheck.retries import attempts_allowed, retry_reason
from tests.support import ROOT, Run, junit_cases, run_pytest, summary_of, without_timings

FEATURES = str(ROOT / "tests" / "features" / "retries")
ONCE = "A model's answer that is wrong once"
ALWAYS = "A model's answer that is always wrong"
FINAL = "A state that is final, in a scenario tagged flaky by nature"
UNTAGGED = "An untagged answer that is wrong once"
NOT_ANSWERING = "A model server that does not answer once"


def retries_run(sandbox_args: list[str], tmp: Path, *args: str) -> tuple[Run, dict[str, int]]:
    counters = tmp / "counters"
    counters.mkdir()
    run = run_pytest(
        [*sandbox_args, *args, FEATURES], tmp, {"STAGECHECK_TEST_COUNTERS": str(counters)}
    )
    return run, {p.name: int(p.read_text()) for p in counters.iterdir()}


@pytest.fixture(scope="module")
def tagged_only(
    world: Kube, control_plane: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Run, dict[str, int], Path]:
    tmp = tmp_path_factory.mktemp("retries")
    args = ["--target", "sandbox", "--kubeconfig", str(control_plane.kubeconfig)]
    run, counts = retries_run(args, tmp)
    return run, counts, tmp / "reports"


def test_a_tagged_scenario_red_once_is_green_and_flaky(
    tagged_only: tuple[Run, dict[str, int], Path],
) -> None:
    run, counts, reports = tagged_only
    assert run.result(ONCE).outcome == "passed", run.output[-3000:]
    assert counts["answer-once"] == 2
    assert "passed on attempt 2 of 3 (flaky)" in run.output
    page = (reports / "retries-status.md").read_text()
    assert f"- ✅ passed on attempt 2 of 3 (flaky): Retries > {ONCE}" in page
    assert "## Flaky: green only on a later attempt" in page
    assert "attempt 1: failed: model smollm2-135m: expected an answer containing 'Quandel'" in page


def test_junit_keeps_one_case_with_the_last_verdict_and_the_earlier_attempts(
    tagged_only: tuple[Run, dict[str, int], Path],
) -> None:
    _, _, reports = tagged_only
    cases = {c.get("name"): c for c in ET.parse(reports / "junit.xml").getroot().iter("testcase")}
    assert len(cases) == 5
    once = cases[f"Retries > {ONCE}"]
    assert once.find("failure") is None and once.find("error") is None
    assert [p.get("value") for p in once.iter("property")] == ["passed on attempt 2 of 3 (flaky)"]
    flaky = once.findall("flakyFailure")
    assert len(flaky) == 1 and "attempt 1 of 3" in (flaky[0].text or "")
    always = cases[f"Retries > {ALWAYS}"]
    assert always.find("failure") is not None
    assert len(always.findall("rerunFailure")) == 2
    assert [p.get("value") for p in always.iter("property")] == ["failed on attempt 3 of 3"]


def test_allure_has_each_attempt_as_a_retry_of_one_test(
    tagged_only: tuple[Run, dict[str, int], Path],
) -> None:
    _, _, reports = tagged_only
    results = [
        json.loads(p.read_text()) for p in (reports / "allure-results").glob("*-result.json")
    ]
    once = sorted((r for r in results if r["name"] == ONCE), key=lambda r: r["start"])
    assert [r["status"] for r in once] == ["failed", "passed"]
    assert len({r["historyId"] for r in once}) == 1  # Allure: one test, the first a retry
    assert [_parameter(r, "attempt") for r in once] == ["1 of 3", "2 of 3"]
    assert once[1]["statusDetails"]["flaky"] is True
    assert "passed on attempt 2 of 3 (flaky)" in once[1]["statusDetails"]["message"]
    assert "tried again: an answer checked once" in once[0]["statusDetails"]["message"]
    always = [r for r in results if r["name"] == ALWAYS]
    assert sorted(r["status"] for r in always) == ["failed"] * 3
    assert [r["name"] for r in results].count(FINAL) == 1


def _parameter(result: dict[str, Any], name: str) -> str | None:
    return next((p["value"] for p in result["parameters"] if p["name"] == name), None)


def test_a_deterministic_red_is_never_retried(
    tagged_only: tuple[Run, dict[str, int], Path],
) -> None:
    run, counts, _ = tagged_only
    assert run.result(FINAL).outcome == "failed"
    assert counts["final-state"] == 1  # tagged, but the phase Failed is final
    assert run.result(UNTAGGED).outcome == "failed"
    assert counts["untagged-answer"] == 1  # no opt-in
    assert run.result(NOT_ANSWERING).outcome == "failed"
    assert counts["not-answering"] == 1
    assert run.result(ALWAYS).outcome == "failed"
    assert counts["answer-always"] == 3
    assert run.returncode == 1


def test_a_run_with_retries_tries_again_only_what_is_transient(
    world: Kube, sandbox_args: list[str], tmp_path: Path
) -> None:
    run, counts = retries_run(sandbox_args, tmp_path, "--retries", "1")
    assert run.result(NOT_ANSWERING).outcome == "passed"  # a connection refused: transient
    assert counts["not-answering"] == 2
    assert run.result(UNTAGGED).outcome == "failed"  # a wrong answer, not tagged: not retried
    assert counts["untagged-answer"] == 1
    assert run.result(ONCE).outcome == "passed"  # the run's N replaces the tag's default
    assert counts["answer-once"] == 2 and counts["answer-always"] == 2
    assert counts["final-state"] == 1
    assert "passed on attempt 2 of 2 (flaky)" in run.output


def test_the_exit_code_follows_the_last_attempts(
    world: Kube, sandbox_args: list[str], tmp_path: Path
) -> None:
    run, counts = retries_run(sandbox_args, tmp_path, "-k", "wrong_once and not untagged")
    assert counts == {"answer-once": 2}
    assert run.returncode == 0, run.output[-3000:]


def test_retries_must_be_a_small_number(sandbox_args: list[str], tmp_path: Path) -> None:
    run = run_pytest([*sandbox_args, "--retries", "many", FEATURES], tmp_path)
    assert run.returncode == 4
    assert "--retries 'many': give a number from 0 to 5" in run.output


def test_two_workers_retry_as_a_serial_run_does(
    tagged_only: tuple[Run, dict[str, int], Path],
    control_plane: Any,
    tmp_path: Path,
) -> None:
    serial, serial_counts, serial_reports = tagged_only
    args = ["--target", "sandbox", "--kubeconfig", str(control_plane.kubeconfig), "-n", "2"]
    run, counts = retries_run(args, tmp_path)
    assert "created: 2/2 workers" in run.output, run.output[-3000:]
    assert counts == serial_counts
    assert {n: r.outcome for n, r in run.scenarios.items()} == {
        n: r.outcome for n, r in serial.scenarios.items()
    }
    reports = tmp_path / "reports"
    assert junit_cases(reports / "junit.xml") == junit_cases(serial_reports / "junit.xml")
    page = (reports / "retries-status.md").read_text()
    assert without_timings(page) == without_timings(
        (serial_reports / "retries-status.md").read_text()
    )
    assert summary_of(run.output) == summary_of(serial.output)
    results = [
        json.loads(p.read_text()) for p in (reports / "allure-results").glob("*-result.json")
    ]
    once = sorted((r for r in results if r["name"] == ONCE), key=lambda r: r["start"])
    assert [r["status"] for r in once] == ["failed", "passed"]
    assert once[1]["statusDetails"]["flaky"] is True


# -- the rule, kind by kind ----------------------------------------------------------------------
def _seen_once(actual: str) -> StepFailure:
    return StepFailure("model smollm2-135m", "an answer", Observation(ok=False, actual=actual))


RULE = [
    # (the red, tagged, retried?)
    (_seen_once("the answer was 'no idea'"), True, True),
    (_seen_once("the answer was 'no idea'"), False, False),
    (
        _seen_once("model endpoint http://x (explicit URL) does not answer: ConnectError: refused"),
        False,
        True,
    ),
    (_seen_once("HTTP 403: user u may not get"), True, False),
    (
        StepFailure(
            "Pod p", "Ready", Observation(ok=False, actual="waiting", terminal="CrashLoopBackOff")
        ),
        True,
        False,
    ),
    (
        StepFailure("Deployment d", "available", Observation(ok=False, actual="0/1"), waited=120.0),
        True,
        False,
    ),
    (TargetUnreachable("https://127.0.0.1:6443 did not answer"), False, True),
    (ServerNotTrusted("certificate not trusted"), True, False),
    (KubeApiError("GET", "/api/v1/pods", 503, "Service Unavailable", "etcd"), False, True),
    (KubeApiError("GET", "/api/v1/pods", 429, "Too Many Requests", "slow down"), False, True),
    (NotFound("GET", "/api/v1/namespaces/x", 404, "Not Found", "gone"), True, False),
    (Forbidden("GET", "/api/v1/pods", 403, "Forbidden", "no"), True, False),
    (httpx.ConnectError("refused"), False, True),
    (TimeoutError("timed out"), False, True),
    (BadArgument("'30 parsecs' is not a duration"), True, False),
    (ConfigError("no such target"), True, False),
    (StagecheckError("a manifest that cannot be applied"), True, False),
    (AssertionError("plain"), True, False),
]


@pytest.mark.parametrize(("error", "tagged", "retried"), RULE)
def test_the_rule_retries_only_what_can_go_away(
    error: BaseException, tagged: bool, retried: bool
) -> None:
    assert (retry_reason(error, tagged) is not None) == retried


def test_attempts_are_allowed_only_by_an_opt_in() -> None:
    assert attempts_allowed(set(), 0) == 1
    assert attempts_allowed({"flaky-by-nature"}, 0) == 3
    assert attempts_allowed({"flaky-by-nature"}, 1) == 2
    assert attempts_allowed({"milvus"}, 2) == 3
