"""What a run found, scenario by scenario: the one record every report is written from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from stagecheck.engine.outcome import Evidence, StepFailure
from stagecheck.reporting.categories import Category, classify

Status = Literal["passed", "failed", "broken", "skipped", "not run"]
MAX_LINE = 300


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
    seconds: float = 0.0

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
