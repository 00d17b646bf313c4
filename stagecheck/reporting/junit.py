"""JUnit XML for CI systems: a suite per stage, a test case per scenario named
``feature > scenario``. A product defect is a ``failure``; an environment problem or a test
defect is an ``error``: the stage could not be checked. A scenario tried more than once keeps
one case with its last attempt's verdict, an ``attempts`` property ("passed on attempt 2 of 3
(flaky)") and its earlier red attempts as Surefire's flakyFailure or rerunFailure elements."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from stagecheck.reporting.records import RunRecord, ScenarioRecord

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def write_junit(path: Path, run: RunRecord, extra: Sequence[ScenarioRecord] = ()) -> None:
    """``extra``: results that are no scenario, such as a run that stopped before its end."""
    root = ET.Element("testsuites", name="stagecheck")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    stages = run.by_stage()
    for record in extra:
        stages.setdefault(record.stage, []).append(record)
    for stage, records in stages.items():
        suite = ET.SubElement(root, "testsuite", name=stage, timestamp=run.started.isoformat())
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for record in records:
            _testcase(suite, record, run)
            counts["tests"] += 1
            if record.red and _is_product(record):
                counts["failures"] += 1
            elif record.red:
                counts["errors"] += 1
            elif record.status in ("skipped", "not run"):
                counts["skipped"] += 1
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", f"{sum(r.seconds for r in records):.3f}")
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{run.seconds:.3f}")
    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _is_product(record: ScenarioRecord) -> bool:
    return record.category is not None and record.category.key == "product"


def _testcase(suite: ET.Element, record: ScenarioRecord, run: RunRecord) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        classname=f"{record.stage}.{'.'.join(record.components)}",
        name=_clean(record.title),
        file=record.feature_file,
        line=str(record.line),
        time=f"{record.seconds:.3f}",
    )
    if record.attempts_note():
        properties = ET.SubElement(case, "properties")
        ET.SubElement(properties, "property", name="attempts", value=record.attempts_note())
    category = record.category
    if record.red and category is not None:
        tag = "failure" if category.key == "product" else "error"
        node = ET.SubElement(case, tag, message=_clean(record.cause()), type=category.name)
        node.text = _clean(_details(record))
    elif record.status == "skipped":
        ET.SubElement(case, "skipped", message=_clean(record.cause()))
    elif record.status == "not run":
        reason = f"not run: {run.stopped}" if run.stopped else "not run"
        ET.SubElement(case, "skipped", message=_clean(reason))
    _earlier_attempts(case, record)


def _earlier_attempts(case: ET.Element, record: ScenarioRecord) -> None:
    """Red attempts before the last, as Maven Surefire's rerun report writes them: a green
    case's are ``flakyFailure``/``flakyError``, a red case's ``rerunFailure``/``rerunError``."""
    for attempt in record.attempts[:-1]:
        if attempt.status not in ("failed", "broken"):
            continue
        kind = "Failure" if attempt.status == "failed" else "Error"
        tag = ("flaky" if record.status == "passed" else "rerun") + kind
        text = f"attempt {attempt.number} of {attempt.limit}: {attempt.cause}"
        node = ET.SubElement(case, tag, message=_clean(attempt.cause), type=attempt.status)
        node.text = _clean(text + (f"\nretried: {attempt.retried}" if attempt.retried else ""))


def _details(record: ScenarioRecord) -> str:
    body = str(record.failure) if record.failure is not None else record.message
    return f"{record.failed_step}  ({record.failed_at})\n{body}" if record.failed_step else body


def _clean(text: str) -> str:
    return _NOT_XML.sub("?", text)
