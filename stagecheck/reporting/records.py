"""What a run found, scenario by scenario: the one record every report is written from."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from stagecheck.engine.outcome import Evidence, Observation, StepFailure
from stagecheck.reporting.categories import Category, classify

Status = Literal["passed", "failed", "broken", "skipped", "not run"]
MAX_LINE = 300


@dataclass
class Attempt:
    """One attempt of a scenario that was tried more than once."""

    number: int
    limit: int
    status: Status
    cause: str  # one line; empty when it passed
    seconds: float
    retried: str | None = None  # why another attempt followed, when one did


@dataclass
class ScenarioRecord:
    """One scenario (one example of an outline) as the run saw it."""

    nodeid: str
    stage: str  # the folder of the feature file: features/stage2 -> stage2
    feature: str
    feature_file: str  # relative to the project root where it lies under it
    scenario: str
    line: int
    components: tuple[str, ...]
    tags: tuple[str, ...]
    example: dict[str, str] = field(default_factory=dict)
    example_number: int | None = None  # 1-based, among the examples of an outline
    status: Status = "not run"
    message: str = ""  # pytest's one-line form of the exception: "module.Class: text"
    failed_step: str | None = None  # the red step: 'Then the deployment "x" is available'
    failed_line: int | None = None  # its line in the feature file
    failure: StepFailure | None = None
    evidence: list[Evidence] = field(default_factory=list)
    seconds: float = 0.0  # every attempt's, set-up and cleanup included
    attempts: list[Attempt] = field(default_factory=list)  # when tried more than once

    @property
    def flaky(self) -> bool:
        """Green on its last attempt after a red one."""
        return self.status == "passed" and any(a.status != "passed" for a in self.attempts)

    def attempts_note(self) -> str:
        """``passed on attempt 2 of 3 (flaky)``; empty for a scenario tried once."""
        if len(self.attempts) < 2:
            return ""
        last = self.attempts[-1]
        note = f"{last.status} on attempt {last.number} of {last.limit}"
        return note + " (flaky)" if self.flaky else note

    def earlier_attempts(self) -> list[str]:
        """``attempt 1: failed: <cause>; retried: <why>``, one line per attempt before the last."""
        return [
            f"attempt {a.number}: {a.status}"
            + (f": {a.cause}" if a.cause else "")
            + (f"; retried: {a.retried}" if a.retried else "")
            for a in self.attempts[:-1]
        ]

    @property
    def name(self) -> str:
        """The scenario's name, with an outline example's number and values."""
        if self.example_number is None:
            return self.scenario
        values = ", ".join(f"{k}={v}" for k, v in self.example.items())
        return f"{self.scenario} [#{self.example_number} {values}]"

    @property
    def title(self) -> str:
        """``feature > scenario``, as JUnit and the status page name it."""
        return f"{self.feature} > {self.name}"

    @property
    def failed_at(self) -> str:
        """Where the red step is: ``features/stage2/milvus.feature:7``."""
        return f"{self.feature_file}:{self.failed_line or self.line}"

    @property
    def category(self) -> Category | None:
        return classify(self.status, self.message)

    @property
    def red(self) -> bool:
        return self.status in ("failed", "broken")

    def cause(self) -> str:
        """Why it is red, in one line: the object, expected, actual and cause when known."""
        if self.failure is not None:
            failure, observed = self.failure, self.failure.observation
            text = f"{failure.subject}: expected {failure.expected}, actual {observed.actual}"
            if observed.terminal:
                text += f" ({observed.terminal})"
            if observed.cause:
                text += f"; cause: {observed.cause}"
        elif self.status == "not run":
            text = "not run"
        else:
            _, _, text = self.message.partition(": ")
            text = text or self.message
        return one_line(text)


def one_line(text: str, limit: int = MAX_LINE) -> str:
    line = " ".join(text.strip().splitlines()[0].split()) if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass
class RunRecord:
    """The whole run: its scenarios, and what stopped it early if something did."""

    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished: datetime | None = None
    scenarios: dict[str, ScenarioRecord] = field(default_factory=dict)
    deselected: dict[str, int] = field(default_factory=dict)  # by stage
    stopped: str | None = None  # why the run stopped before its end, if it did

    def by_stage(self) -> dict[str, list[ScenarioRecord]]:
        stages: dict[str, list[ScenarioRecord]] = {}
        for record in self.scenarios.values():
            stages.setdefault(record.stage, []).append(record)
        return stages

    @property
    def seconds(self) -> float:
        end = self.finished or datetime.now(UTC)
        return (end - self.started).total_seconds()


def components_of(records: Iterable[ScenarioRecord]) -> dict[str, list[ScenarioRecord]]:
    """Records by component, in the order components first appear."""
    found: dict[str, list[ScenarioRecord]] = {}
    for record in records:
        for component in record.components:
            found.setdefault(component, []).append(record)
    return found


ComponentState = Literal["passing", "failing", "unchecked"]
MARKS: dict[ComponentState, str] = {"passing": "✅", "failing": "❌", "unchecked": "⚠️"}


@dataclass(frozen=True)
class ComponentStatus:
    """A component's state in this run: failing when the deployment is wrong somewhere,
    unchecked when a scenario could not tell (environment or test defect, nothing run)."""

    name: str
    state: ComponentState
    records: tuple[ScenarioRecord, ...]

    @property
    def passed(self) -> int:
        return sum(r.status == "passed" for r in self.records)

    @property
    def mark(self) -> str:
        return MARKS[self.state]

    @property
    def red(self) -> list[ScenarioRecord]:
        return [r for r in self.records if r.red]


def component_statuses(records: Iterable[ScenarioRecord]) -> list[ComponentStatus]:
    statuses = []
    for name, found in sorted(components_of(records).items()):
        state: ComponentState
        if any(r.red and r.category is not None and r.category.key == "product" for r in found):
            state = "failing"
        elif any(r.red for r in found) or not any(r.status == "passed" for r in found):
            state = "unchecked"
        else:
            state = "passing"
        statuses.append(ComponentStatus(name, state, tuple(found)))
    return statuses


# -- handing records from an xdist worker to the controller -------------------------------------
def records_to_text(records: Iterable[ScenarioRecord]) -> str:
    """Records as JSON text (what execnet carries from a worker), failures and evidence kept."""
    return json.dumps([_record_plain(r) for r in records])


def records_from_text(text: str) -> list[ScenarioRecord]:
    return [_record_from_plain(item) for item in json.loads(text)]


def _record_plain(record: ScenarioRecord) -> dict[str, Any]:
    plain = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    plain["components"], plain["tags"] = list(record.components), list(record.tags)
    plain["evidence"] = [dataclasses.asdict(e) for e in record.evidence]
    plain["attempts"] = [dataclasses.asdict(a) for a in record.attempts]
    plain["failure"] = None if record.failure is None else _failure_plain(record.failure)
    return plain


def _record_from_plain(plain: dict[str, Any]) -> ScenarioRecord:
    values = dict(plain)
    values["components"], values["tags"] = tuple(plain["components"]), tuple(plain["tags"])
    values["evidence"] = [Evidence(**e) for e in plain["evidence"]]
    values["attempts"] = [Attempt(**a) for a in plain["attempts"]]
    failure = plain["failure"]
    values["failure"] = None if failure is None else _failure_from_plain(failure)
    return ScenarioRecord(**values)


def _failure_plain(failure: StepFailure) -> dict[str, Any]:
    observed = {
        f.name: _time_plain(getattr(failure.observation, f.name))
        for f in dataclasses.fields(failure.observation)
    }
    return {
        "subject": failure.subject,
        "expected": failure.expected,
        "observation": observed,
        "waited": failure.waited,
        "evidence": [dataclasses.asdict(e) for e in failure.evidence],
        "highlights": list(failure.highlights),
    }


def _failure_from_plain(plain: dict[str, Any]) -> StepFailure:
    observed = {k: _time_from_plain(v) for k, v in plain["observation"].items()}
    return StepFailure(
        plain["subject"],
        plain["expected"],
        Observation(**observed),
        waited=plain["waited"],
        evidence=[Evidence(**e) for e in plain["evidence"]],
        highlights=list(plain["highlights"]),
    )


def _time_plain(value: Any) -> Any:
    return {"datetime": value.isoformat()} if isinstance(value, datetime) else value


def _time_from_plain(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"datetime"}:
        return datetime.fromisoformat(value["datetime"])
    return value
