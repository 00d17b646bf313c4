"""Allure results: what allure-pytest-bdd writes, put right for stagecheck, and what it cannot.

The adapter makes each scenario (each outline example) a result and each Gherkin step a step.
On top of it this module labels a result with its stage, feature, components and suites; names
it by the feature file's path under the project (not the absolute path) so history follows a
scenario from one checkout to another; numbers outline examples so two identical rows stay
two results instead of one and a retry; keeps fixture objects out of step parameters (the
sentence already says everything); and writes the results the adapter never starts: a
feature file that cannot be read, a scenario whose set-up failed, a run stopped early.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from allure_commons.logger import AllureFileLogger
from allure_commons.model2 import Label, Parameter, StatusDetails, TestResult
from pytest_bdd.parser import Step

from stagecheck.reporting.categories import allure_categories
from stagecheck.reporting.environment import write_properties
from stagecheck.reporting.records import ScenarioRecord


def adapter_listener(config: pytest.Config) -> Any | None:
    """allure-pytest-bdd's listener when this run writes Allure results, else None."""
    try:
        from allure_pytest_bdd.pytest_bdd_listener import PytestBDDListener
    except ImportError:  # pragma: no cover - allure-pytest-bdd is a dependency
        return None
    return next(
        (p for p in config.pluginmanager.get_plugins() if isinstance(p, PytestBDDListener)), None
    )


def labels(record: ScenarioRecord, adapter: bool) -> list[Label]:
    """Labels of a scenario's result; the adapter adds feature and tags itself."""
    found = [
        Label(name="epic", value=record.stage),
        Label(name="parentSuite", value=record.stage),
        Label(name="suite", value=record.feature),
    ]
    found += [Label(name="component", value=component) for component in record.components]
    if not adapter:
        found.append(Label(name="feature", value=record.feature))
        found += [Label(name="tag", value=tag) for tag in record.tags]
        found.append(Label(name="framework", value="pytest-bdd"))
    return found


def full_name(record: ScenarioRecord) -> str:
    return f"{record.feature_file}:{record.scenario}"


def parameters(record: ScenarioRecord) -> list[Parameter]:
    found = [Parameter(name=name, value=value) for name, value in record.example.items()]
    if record.example_number is not None:
        found.append(Parameter(name="example", value=f"#{record.example_number}"))
    return found


def complete_started_result(listener: Any, nodeid: str, record: ScenarioRecord) -> None:
    """Label the result the adapter has just started for a scenario."""
    with listener.lifecycle.update_test_case(uuid=listener.nodeid_to_uuid[nodeid]) as result:
        if result is None:
            return
        result.name = record.name  # outline examples apart at a glance, not only by parameters
        result.fullName = full_name(record)
        result.testCaseId = _md5(result.fullName)  # the adapter derives historyId from it
        result.labels.extend(labels(record, adapter=True))
        if record.example_number is not None:
            result.parameters.append(parameters(record)[-1])


def mark_attempt(listener: Any, nodeid: str, record: ScenarioRecord) -> None:
    """Name the attempt on the result the adapter is about to write. Every attempt of a
    scenario has the same historyId (the attempt parameter is excluded from it), so Allure
    shows the last as the result and the earlier ones as its retries; a green last attempt
    after a red one is marked flaky."""
    uuid = listener.nodeid_to_uuid.get(nodeid)  # a defaultdict: get() creates nothing
    if uuid is None:
        return
    attempt = record.attempts[-1]
    with listener.lifecycle.update_test_case(uuid=uuid) as result:
        if result is None:
            return
        result.parameters.append(
            Parameter(name="attempt", value=f"{attempt.number} of {attempt.limit}", excluded=True)
        )
        if record.flaky:
            lines = [record.attempts_note(), *record.earlier_attempts()]
            result.statusDetails = StatusDetails(flaky=True, message="\n".join(lines))
        elif attempt.retried:
            details = result.statusDetails or StatusDetails()
            retried = f"attempt {attempt.number} of {attempt.limit}, tried again: {attempt.retried}"
            details.message = f"{retried}\n{details.message or ''}".strip()
            result.statusDetails = details


def drop_step_parameters(listener: Any, step: Step) -> None:
    """The adapter lists every argument of the step function, fixtures included (the
    cluster, the target, the settings); the step's sentence already shows its values."""
    from allure_pytest_bdd.steps import get_step_uuid

    with listener.lifecycle.update_step(uuid=get_step_uuid(step)) as step_result:
        if step_result is not None:
            step_result.parameters = []


def write_result(results: Path, record: ScenarioRecord) -> None:
    """A result for a scenario the adapter never started (set-up failed, file unreadable)."""
    test_case_id = _md5(full_name(record))
    params = parameters(record)
    result = TestResult(
        uuid=str(uuid.uuid4()),
        name=record.name,
        fullName=full_name(record),
        testCaseId=test_case_id,
        historyId=f"{test_case_id}.{_md5(*(str(p.value) for p in sorted(params, key=_name)))}",
        status=record.status if record.status in ("passed", "failed", "broken") else "skipped",
        statusDetails=StatusDetails(message=record.message),
        stage="finished",
        labels=labels(record, adapter=False),
        parameters=params,
        titlePath=[*Path(record.feature_file).parts[:-1], record.feature],
        start=_now_ms() - int(record.seconds * 1000),
        stop=_now_ms(),
    )
    AllureFileLogger(results).report_result(result)  # type: ignore[no-untyped-call]


def _name(parameter: Parameter) -> str:
    return str(parameter.name)


def _md5(*parts: str) -> str:
    """Allure's id hash (allure_commons.utils.md5), so ids match the adapter's."""
    digest = hashlib.md5()
    for part in parts:
        digest.update(part.encode("utf-8"))
    return digest.hexdigest()


def _now_ms() -> int:
    return int(round(time.time() * 1000))


def clear_results(results: Path) -> None:
    """Empty the run's own results folder: a report shows this run; history keeps the past."""
    if results.is_dir():
        for path in results.iterdir():
            if path.is_file():
                path.unlink()


def write_run_files(results: Path, environment: dict[str, str]) -> None:
    results.mkdir(parents=True, exist_ok=True)
    write_properties(results / "environment.properties", environment)
    (results / "categories.json").write_text(
        json.dumps(allure_categories(), indent=2) + "\n", encoding="utf-8"
    )
