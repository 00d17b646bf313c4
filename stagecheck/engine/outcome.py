"""What a check saw, and the failure a red step carries: object, expected, actual, since, cause."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

from stagecheck.engine.durations import format_duration
from stagecheck.errors import Category


@dataclass(frozen=True)
class Observation:
    """One evaluation of a check against the cluster's current state."""

    ok: bool
    actual: str
    since: datetime | None = None
    cause: str | None = None
    terminal: str | None = None  # set when the state says it will not recover by waiting

    @staticmethod
    def passed(actual: str) -> Observation:
        return Observation(ok=True, actual=actual)


@dataclass(frozen=True)
class Evidence:
    """A named attachment for the report: YAML of an object, its events, related pods."""

    name: str
    text: str
    media_type: str = "text/plain"


@dataclass
class StepFailure(AssertionError):
    """A red step. ``str()`` is the message a stakeholder reads; evidence goes to the report."""

    category: ClassVar[Category] = "product"  # the deployment is not in the stated state
    subject: str
    expected: str
    observation: Observation
    waited: float | None = None
    evidence: list[Evidence] = field(default_factory=list)
    highlights: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message())

    def message(self) -> str:
        obs = self.observation
        lines = [f"{self.subject}: expected {self.expected}", f"  actual:   {obs.actual}"]
        if obs.since is not None:
            ago = (datetime.now(UTC) - obs.since).total_seconds()
            lines.append(f"  since:    {obs.since:%Y-%m-%dT%H:%M:%SZ} ({format_duration(ago)} ago)")
        if obs.terminal:
            lines.append(f"  stopped:  {obs.terminal} (will not recover by waiting)")
        elif self.waited is not None:
            lines.append(f"  waited:   {format_duration(self.waited)}")
        if obs.cause:
            lines.append(f"  cause:    {obs.cause}")
        lines.extend(f"  {line}" for line in self.highlights)
        if self.evidence:
            lines.append("  evidence: " + ", ".join(e.name for e in self.evidence))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.message()


def fail(
    subject: str,
    expected: str,
    actual: str,
    cause: str | None = None,
    evidence: list[Evidence] | None = None,
) -> StepFailure:
    """A red step seen once (no wait): a call to a service, for instance, with the exchange."""
    return StepFailure(
        subject,
        expected,
        Observation(ok=False, actual=actual, cause=cause),
        evidence=evidence or [],
    )


@functools.lru_cache(maxsize=4096)  # many pods share a timestamp; a wait asks again and again
def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
