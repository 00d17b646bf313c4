"""What a GitHub Actions job shows of a run: the stage status pages in the job's summary, and
one annotation per red scenario, read from the run's ``junit.xml`` (already free of secrets).

    python -m stagecheck.reporting.github --reports DIR [--summary FILE]

prints the annotations (workflow commands) and appends the status pages to FILE (the job's
``$GITHUB_STEP_SUMMARY``). The nightly workflow calls it through ``scripts/nightly``.
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

MAX_ANNOTATION = 4000  # characters of a message; GitHub shows the first lines anyway


def annotation_lines(junit: Path) -> list[str]:
    """``::error`` for a product defect, ``::warning`` for a scenario that could not be checked."""
    if not junit.exists():
        return [f"::error title=stagecheck::no {junit.name}: the run ended before it reported"]
    lines = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        for tag, level in (("failure", "error"), ("error", "warning")):
            node = case.find(tag)
            if node is None:
                continue
            where = f"file={case.get('file', '')},line={case.get('line', '1')},"
            title = _property(f"{case.get('classname', '')}: {case.get('name', '')}")
            message = _data((node.get("message") or node.text or "")[:MAX_ANNOTATION])
            lines.append(f"::{level} {where}title={title}::{message}")
    return lines


def summary(reports: Path) -> str:
    """The status pages of the stages the run checked, one after another."""
    pages = sorted(reports.glob("*-status.md"))
    if not pages:
        return "stagecheck wrote no status page: the run ended before any scenario ran\n"
    return "\n\n".join(page.read_text(encoding="utf-8") for page in pages) + "\n"


def _data(text: str) -> str:
    """A workflow command's message: newlines and % escaped as GitHub reads them."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=Path, required=True)
    parser.add_argument("--summary", type=Path, help="the job summary file to append to")
    options = parser.parse_args(argv)
    for line in annotation_lines(options.reports / "junit.xml"):
        print(line)
    if options.summary:
        with options.summary.open("a", encoding="utf-8") as handle:
            handle.write(summary(options.reports))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
