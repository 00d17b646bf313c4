"""The end-of-run summary on the terminal: per component, its state and each failure's cause,
one line each (and each scenario green only on a later attempt: flaky), then where the reports
are."""

from __future__ import annotations

from stagecheck.reporting.records import ScenarioRecord, component_statuses

ASCII_MARKS = {"✅": "[ok]", "❌": "[FAIL]", "⚠️": "[??]"}


def summary_lines(records: list[ScenarioRecord]) -> list[str]:
    components = component_statuses(records)
    width = max((len(c.name) for c in components), default=0)
    lines = []
    for component in components:
        skipped = [r for r in component.records if r.status == "skipped"]
        lines.append(
            f"{component.mark} {component.name:<{width}}  {component.state}: "
            f"{component.passed}/{len(component.records)} scenarios pass"
            + (f", {len(skipped)} skipped" if skipped else "")
        )
        for record in skipped:
            lines.append(f"     {record.name}: skipped: {record.cause()}")
        for record in component.red:
            kind = f"[{record.category.name.lower()}] " if record.category else ""
            note = f" ({record.attempts_note()})" if record.attempts_note() else ""
            lines.append(f"     {record.name}: {kind}{record.cause()}{note}")
        for record in component.records:
            if record.flaky:
                earlier = "; ".join(record.earlier_attempts())
                lines.append(f"     {record.name}: {record.attempts_note()}: {earlier}")
    return lines


def plain(line: str) -> str:
    """The line with words instead of symbols, for a terminal that cannot show them."""
    for mark, word in ASCII_MARKS.items():
        line = line.replace(mark, word)
    return line.encode("ascii", "replace").decode("ascii")
