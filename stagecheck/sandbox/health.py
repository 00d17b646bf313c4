"""What ``scripts/sandbox status`` asks of every part of the sandbox: each part is a Component
that checks itself for real (its readiness endpoint or probe, not a pid) and says why not.

A new part of the sandbox (such as a process of stand-in controllers recorded in the state
directory) adds one Component to ``cli.components``; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

LOG_LINES = 8  # of an unhealthy component's log, shown under it


@dataclass(frozen=True)
class Health:
    healthy: bool
    detail: str  # where it answers, or why it does not
    log: Path | None = None  # shown (its last lines) when unhealthy


class Component(Protocol):
    @property
    def name(self) -> str: ...

    def check(self) -> Health: ...


@dataclass(frozen=True)
class Check:
    """A component whose check is a function."""

    name: str
    probe: Callable[[], Health]

    def check(self) -> Health:
        try:
            return self.probe()
        except Exception as error:  # a check that breaks reports red; status never crashes
            return Health(False, f"its check failed: {type(error).__name__}: {error}")


def report(components: Iterable[Component]) -> tuple[bool, list[str]]:
    """(all healthy, the lines to print): one per component, an unhealthy one with the last
    lines of its log."""
    lines, ok = [], True
    for component in components:
        health = component.check()
        ok = ok and health.healthy
        state = "healthy" if health.healthy else "UNHEALTHY"
        lines.append(f"  {component.name:<24} {state:<9} {health.detail}")
        if not health.healthy and health.log is not None:
            tail = log_tail(health.log, LOG_LINES)
            lines.append(f"      last {len(tail)} lines of {health.log}:")
            lines.extend(f"      | {line}" for line in tail)
    return ok, lines


def log_tail(path: Path, lines: int) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return [f"(no log: {path} cannot be read)"]
    return [line.rstrip() for line in text.splitlines()[-lines:]] or ["(empty log)"]
