"""The reporting plugin: every run that checks scenarios leaves reports for stakeholders.

Under the run's reports folder (``reports/``, or ``STAGECHECK_REPORTS``):

    allure-results/        Allure results (or wherever ``--alluredir`` says), with
                           environment.properties and categories.json
    junit.xml              one test case per scenario, named "feature > scenario"
    <stage>-status.md      the stage status page, with <stage>-evidence/ and <stage>-status.json

and the terminal ends with each component's state and the cause of each failure. A run with
``--collect-only`` or ``--plan`` checks nothing and writes none of it.

In ``pytest_plugins`` this plugin comes before ``stagecheck.plugin``: pytest calls
``pytest_configure`` of later plugins first, so the run's settings exist when this one needs
them, and allure-pytest-bdd (a setuptools plugin, configured last) sees the results folder.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_bdd.parser import Feature, Scenario, Step
from pytest_bdd.scenario import scenario_wrapper_template_registry

from stagecheck.config import Settings
from stagecheck.engine.kubernetes import Cluster
from stagecheck.engine.outcome import StepFailure
from stagecheck.errors import StagecheckError
from stagecheck.redaction import known_secrets, redact_text, remember
from stagecheck.reporting import allure_results
from stagecheck.reporting.environment import environment_entries
from stagecheck.reporting.junit import write_junit
from stagecheck.reporting.records import (
    Attempt,
    RunRecord,
    ScenarioRecord,
    Status,
    records_from_text,
    records_to_text,
)
from stagecheck.reporting.status_page import StagePage, write_stage_page
from stagecheck.reporting.summary import plain, summary_lines
from stagecheck.reporting.versions import SeenVersions
from stagecheck.retries import ATTEMPT

EXAMPLE_PARAM = "_pytest_bdd_example"
OPENSHIFT_VERSION = "/apis/config.openshift.io/v1/clusterversions/version"
IMAGE = "image-"  # a SeenVersions name: the image a workload's container runs


@dataclass
class Reporting:
    """The reporting state of one run."""

    settings: Settings
    writing: bool
    results_dir: Path | None  # where Allure results go, None when Allure is off
    owns_results: bool  # the default folder, emptied at the start of a run
    run: RunRecord = field(default_factory=RunRecord)
    versions: SeenVersions = field(default_factory=SeenVersions)
    started_in_allure: set[str] = field(default_factory=set)
    written: list[Path] = field(default_factory=list)
    outcomes: dict[tuple[str, str], tuple[Status, str]] = field(default_factory=dict)
    listener: Any = None
    from_workers: list[dict[str, Any]] = field(default_factory=list)  # xdist: what each handed
    red_seen: dict[str, str] = field(default_factory=dict)  # xdist controller: nodeid -> report
    cleared: bool = False


WORKER_OUTPUT = "stagecheck_reporting"


STATE = pytest.StashKey[Reporting]()
RECORD = pytest.StashKey[ScenarioRecord]()
ATTEMPT_REPORTS = pytest.StashKey[list[pytest.TestReport]]()
# Hooks that get no config (collect and log reports, interrupts) find the run's through this.
_current_config: pytest.Config | None = None


def reporting_of(config: pytest.Config) -> Reporting:
    return config.stash[STATE]


def seen_versions_of(config: pytest.Config) -> SeenVersions:
    """The run's record of versions seen, for code that has the config but no fixtures."""
    return config.stash[STATE].versions


@pytest.fixture(scope="session")
def seen_versions(pytestconfig: pytest.Config) -> SeenVersions:
    """Record a version a step saw: ``seen_versions.record("milvus", "2.4.1")``."""
    return seen_versions_of(pytestconfig)


# -- configuration -------------------------------------------------------------------------------
# Before allure-pytest-bdd's (it starts writing only where a results folder is set by then) and
# after stagecheck.plugin's (tryfirst too, and registered after this module: called first).
@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Imported here: imported with this module, pytest could not rewrite its asserts.
    from stagecheck.plugin import SETTINGS

    if SETTINGS not in config.stash:
        raise pytest.UsageError(
            "stagecheck: list stagecheck.reporting.plugin before stagecheck.plugin in "
            "pytest_plugins (stagecheck/plugins.py): it needs the run's settings when it is "
            "configured"
        )
    settings = config.stash[SETTINGS]
    writing = not config.option.collectonly and not settings.run.plan
    owns = False
    if hasattr(config.option, "allure_report_dir"):  # allure-pytest-bdd is loaded
        if writing and not config.option.allure_report_dir:
            config.option.allure_report_dir = str(settings.reports_dir / "allure-results")
            owns = True
        chosen = config.option.allure_report_dir
        results = Path(os.path.abspath(chosen)) if chosen else None
    else:
        results = None
    config.stash[STATE] = Reporting(settings, writing, results, owns)
    global _current_config
    _current_config = config


@pytest.hookimpl(trylast=True)  # after every plugin has written its files
def pytest_unconfigure(config: pytest.Config) -> None:
    global _current_config
    _current_config = None
    state = config.stash.get(STATE, None)
    if state is not None and not _is_worker(config):
        evidence = sorted(state.settings.reports_dir.glob("*-evidence"))  # the pages' files
        _sweep([*state.written, *evidence, *([state.results_dir] if state.results_dir else [])])


# -- collecting: one record per scenario ---------------------------------------------------------
def pytest_deselected(items: Sequence[pytest.Item]) -> None:
    for item in items:
        record = _new_record(item)
        if record is not None:
            deselected = reporting_of(item.config).run.deselected
            deselected[record.stage] = deselected.get(record.stage, 0) + 1


def pytest_collection_finish(session: pytest.Session) -> None:
    state = reporting_of(session.config)
    for item in session.items:
        record = _new_record(item)
        if record is not None:
            item.stash[RECORD] = record
            state.run.scenarios[item.nodeid] = record
    if not _is_worker(session.config) and _has_work(state):
        _clear_results(state)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """xdist, on the controller: the first worker has collected. No scenario runs before every
    worker has (the scheduler waits for all collections), so the folder is emptied in time."""
    if ids:
        _clear_results(reporting_of(node.config))


def _clear_results(state: Reporting) -> None:
    if state.writing and state.owns_results and state.results_dir and not state.cleared:
        allure_results.clear_results(state.results_dir)
        state.cleared = True


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """A feature file that is not valid Gherkin is a red result of its own (a test defect)."""
    if not report.failed or not report.nodeid.endswith(".feature"):
        return
    config = _current_config
    if config is None:
        return
    path = Path(str(report.fspath)).resolve()
    text = str(report.longrepr)
    line = re.search(r"\.feature:(\d+):", text)
    reporting_of(config).run.scenarios[report.nodeid] = ScenarioRecord(
        nodeid=report.nodeid,
        stage=path.parent.name,
        feature=path.name,
        feature_file=_relative(path, reporting_of(config).settings.root),
        scenario="the feature file is valid Gherkin",
        line=int(line.group(1)) if line else 1,
        components=(path.stem,),
        tags=(),
        status="broken",
        message=f"CollectError: {text}",
    )


def _new_record(item: pytest.Item) -> ScenarioRecord | None:
    template = scenario_wrapper_template_registry.get(getattr(item, "obj", None))  # type: ignore[arg-type]
    if template is None:
        return None
    feature = template.feature
    path = Path(feature.filename).resolve()
    callspec = getattr(item, "callspec", None)
    example = dict(callspec.params.get(EXAMPLE_PARAM) or {}) if callspec else {}
    number = callspec.indices.get(EXAMPLE_PARAM) if callspec and example else None
    return ScenarioRecord(
        nodeid=item.nodeid,
        stage=path.parent.name,
        feature=feature.name or path.name,
        feature_file=_relative(path, reporting_of(item.config).settings.root),
        scenario=template.name,
        line=template.line_number,
        components=(_component(path, feature.tags),),
        tags=tuple(sorted(feature.tags | template.tags)),
        example={str(k): str(v) for k, v in example.items()},
        example_number=None if number is None else number + 1,
    )


def _component(path: Path, tags: set[str]) -> str:
    """The first tag of a feature names its component (``@milvus @tier1``: milvus); a feature
    without tags is a component named by its file."""
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if text.startswith("@"):
            first = text.split()[0].removeprefix("@")
            if first in tags:
                return first
        elif text and not text.startswith("#"):
            break
    return min(tags) if tags else path.stem


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


# -- running: Allure labels and steps, failures, outcomes, versions ------------------------------
@pytest.hookimpl(trylast=True)  # after allure-pytest-bdd has started the scenario's result
def pytest_bdd_before_scenario(
    request: pytest.FixtureRequest, feature: Feature, scenario: Scenario
) -> None:
    state = reporting_of(request.config)
    record = request.node.stash.get(RECORD, None)
    listener = _listener(state, request.config)
    if record is None or listener is None:
        return
    allure_results.complete_started_result(listener, request.node.nodeid, record)
    state.started_in_allure.add(request.node.nodeid)


@pytest.hookimpl(trylast=True)  # after allure-pytest-bdd has listed the step's arguments
def pytest_bdd_before_step_call(request: pytest.FixtureRequest, step: Step) -> None:
    listener = _listener(reporting_of(request.config), request.config)
    if listener is not None:
        allure_results.drop_step_parameters(listener, step)


def pytest_bdd_step_error(
    request: pytest.FixtureRequest, feature: Feature, step: Step, exception: Exception
) -> None:
    record = request.node.stash.get(RECORD, None)
    if record is None:
        return
    record.failed_step = f"{step.keyword} {step.name}"
    record.failed_line = step.line_number
    if isinstance(exception, StepFailure):
        record.failure = exception
        record.evidence = list(exception.evidence)


def pytest_bdd_step_func_lookup_error(request: pytest.FixtureRequest, step: Step) -> None:
    record = request.node.stash.get(RECORD, None)
    if record is not None:
        record.failed_step = f"{step.keyword} {step.name}"
        record.failed_line = step.line_number


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    excinfo = call.excinfo
    if excinfo is not None and RECORD in item.stash:
        # As Allure sees it: an assertion (a StepFailure) failed, anything else is broken.
        if isinstance(excinfo.value, AssertionError | pytest.fail.Exception):
            status: Status = "failed"
        elif isinstance(excinfo.value, pytest.skip.Exception):
            status = "skipped"
        else:
            status = "broken"
        outcomes = reporting_of(item.config).outcomes
        outcomes[(item.nodeid, call.when)] = (status, redact_text(excinfo.exconly()))
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    config = _current_config
    if config is None:
        return
    state = reporting_of(config)
    if report.failed and config.pluginmanager.has_plugin("dsession"):
        state.red_seen[report.nodeid] = str(report.longrepr)  # a worker that crashes hands none
    record = state.run.scenarios.get(report.nodeid)
    if record is None:
        return
    record.seconds += report.duration
    if _decides(report, record.status):
        record.status, record.message = _outcome(reporting_of(config), report)


def _decides(report: pytest.TestReport, status_so_far: Status) -> bool:
    """Whether a phase's report is the scenario's outcome."""
    if report.when == "setup":
        return not report.passed  # a red set-up is the outcome; a green one says nothing
    if report.when == "teardown":
        return report.failed and status_so_far == "passed"  # cleanup failed
    return True


@pytest.hookimpl(trylast=True, wrapper=True, specname="pytest_runtest_makereport")
def pytest_runtest_makereport_attempt(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Each attempt of a scenario that may be retried (stagecheck.plugin's loop): its verdict
    in the record, and in its Allure result before the adapter writes it (this wrapper is
    inside the adapter's, so it runs first)."""
    report = yield
    attempting = item.stash.get(ATTEMPT, None)
    record = item.stash.get(RECORD, None)
    if attempting is None or record is None:
        return report
    if report.when == "setup":
        item.stash[ATTEMPT_REPORTS] = []
    reports = item.stash.setdefault(ATTEMPT_REPORTS, [])
    reports.append(report)
    if report.when != "teardown":
        return report
    state = reporting_of(item.config)
    status: Status = "not run"
    message = ""
    for phase in reports:
        if _decides(phase, status):
            status, message = _outcome(state, phase)
    again = attempting.retry is not None and report.passed
    if again or attempting.number > 1:
        record.status, record.message = status, message  # for its cause, in its own words
        cause = record.cause() if record.red or status == "skipped" else ""
        record.attempts.append(
            Attempt(
                attempting.number,
                attempting.limit,
                status,
                cause,
                sum(r.duration for r in reports),
                attempting.retry if again else None,
            )
        )
    listener = _listener(state, item.config)
    if listener is not None and record.attempts:
        allure_results.mark_attempt(listener, item.nodeid, record)
    if again:  # the next attempt starts afresh; this one's time still counts
        record.seconds += sum(r.duration for r in reports)
        record.status, record.message = "not run", ""
        record.failed_step = record.failed_line = record.failure = None
        record.evidence = []
    return report


def _outcome(state: Reporting, report: pytest.TestReport) -> tuple[Status, str]:
    if report.passed:
        return "passed", ""
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        return "skipped", str(reason)
    found = state.outcomes.get((report.nodeid, report.when))
    return found if found is not None else ("broken", str(report.longrepr))


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, Any, Any]:
    value = yield
    if isinstance(value, Cluster):
        _record_cluster_versions(value, reporting_of(request.config).versions)
    return value


def _record_cluster_versions(cluster: Cluster, versions: SeenVersions) -> None:
    try:
        versions.record("kubernetes", str(cluster.kube.version().get("gitVersion", "")))
        # Asked only where OpenShift serves it (discovery, which the steps read anyway).
        served = any(t.group == "config.openshift.io" for t in cluster.discovery.types())
        openshift = cluster.kube.get_or_none(OPENSHIFT_VERSION) if served else None
    except StagecheckError:
        return  # the scenario's own steps will say what is wrong with the target
    desired = ((openshift or {}).get("status") or {}).get("desired") or {}
    if desired.get("version"):
        versions.record("openshift", str(desired["version"]))
    try:  # the images the stage's pods run, as the run began
        pods = cluster.kube.get(f"/api/v1/namespaces/{cluster.namespace}/pods").get("items", [])
    except StagecheckError:
        return
    for pod in pods:
        labels = pod["metadata"].get("labels") or {}
        workload = (
            labels.get("app.kubernetes.io/name") or labels.get("app") or pod["metadata"]["name"]
        )
        for container in (pod.get("spec") or {}).get("containers") or []:
            versions.record(
                f"{IMAGE}{workload}-{container['name']}", str(container.get("image", ""))
            )


def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    config = _current_config
    if config is None:
        return
    value = excinfo.value
    if isinstance(value, pytest.exit.Exception):
        reporting_of(config).run.stopped = value.msg if value.returncode else None
    elif type(value).__module__ == "xdist.dsession" and str(value):
        # xdist's stop of its workers: -x/--maxfail ("stopping after 1 failures"), or a worker's
        reporting_of(config).run.stopped = str(value)
    else:
        reporting_of(config).run.stopped = "interrupted (Ctrl-C or SIGTERM)"


# -- writing -------------------------------------------------------------------------------------
def pytest_sessionfinish(session: pytest.Session) -> None:
    state = reporting_of(session.config)
    if _is_worker(session.config):
        _hand_to_controller(session.config, state)
        return
    _merge_workers(state)
    _fail_on_skipped(session, state)
    if not state.writing or not _has_work(state):
        return
    run, settings = state.run, state.settings
    run.finished = datetime.now(UTC)
    if run.stopped is None and isinstance(session.shouldfail, str):
        run.stopped = session.shouldfail  # a red preflight, or --maxfail: why the rest did not run
    environment = environment_entries(settings, state.versions)
    stops = _stop_records(state)
    if state.results_dir is not None:
        for record in [*run.scenarios.values(), *stops]:
            if record.nodeid not in state.started_in_allure and record.status != "not run":
                allure_results.write_result(state.results_dir, record)
        allure_results.write_run_files(state.results_dir, environment)
        state.written.append(state.results_dir)
    junit = settings.reports_dir / "junit.xml"
    write_junit(junit, run, stops)
    state.written.append(junit)
    for stage, records in run.by_stage().items():
        where = StagePage(
            stage, settings.reports_dir, settings.root, settings.target.name, state.results_dir
        )
        state.written.append(write_stage_page(where, records, run, environment))


def _sweep(paths: Sequence[Path]) -> None:
    """Every report file (and every file under a report folder) with known secrets and
    credential shapes cut out, whatever wrote it: stagecheck, allure-pytest-bdd, pytest."""
    for path in paths:
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue  # a folder, or a binary attachment (a screenshot)
            clean = redact_text(text)
            if clean != text:
                file.write_text(clean, encoding="utf-8")


def _stop_records(state: Reporting) -> list[ScenarioRecord]:
    """A red result per stage for a run that stopped before its scenarios ran."""
    stopped = state.run.stopped
    if not stopped or any(r.red for r in state.run.scenarios.values()):
        return []  # nothing stopped it, or a red scenario already says why (a preflight)
    return [
        ScenarioRecord(
            nodeid=f"{stage}::run",
            stage=stage,
            feature="stagecheck run",
            feature_file=records[0].feature_file,
            scenario=f"the run reaches target {state.settings.target.name!r}",
            line=1,
            components=(),
            tags=(),
            status="broken",
            message=f"_pytest.outcomes.Exit: {stopped}",
        )
        for stage, records in state.run.by_stage().items()
        if any(r.status == "not run" for r in records)
    ]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    state = reporting_of(terminalreporter.config)
    if _is_worker(terminalreporter.config):
        return
    skipped = [r for r in state.run.scenarios.values() if r.status == "skipped"]
    if skipped and terminalreporter.config.getoption("fail_on_skipped", False):
        terminalreporter.write_line(
            f"stagecheck: {len(skipped)} scenario(s) skipped, and --fail-on-skipped makes that "
            "a failure of the run: " + "; ".join(redact_text(r.name) for r in skipped[:5])
        )
    if not state.writing or not _has_work(state):
        return
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    for stage, records in state.run.by_stage().items():
        terminalreporter.write_sep("-", f"stagecheck: {stage}")
        for line in summary_lines(records):
            terminalreporter.write_line(_printable(redact_text(line), encoding))
    if state.written:
        root = state.settings.root
        shown = ", ".join(_relative(p.resolve(), root) for p in state.written)
        terminalreporter.write_line(f"reports: {shown} (HTML: scripts/report)")


def _fail_on_skipped(session: pytest.Session, state: Reporting) -> None:
    """``--fail-on-skipped``: a run that skipped a scenario did not check the whole stage."""
    if not session.config.getoption("fail_on_skipped", False):
        return
    skipped = [r for r in state.run.scenarios.values() if r.status == "skipped"]
    if skipped and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _printable(line: str, encoding: str) -> str:
    try:
        line.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return plain(line)
    return line


# -- under pytest-xdist: workers run, the controller writes -------------------------------------
def _hand_to_controller(config: pytest.Config, state: Reporting) -> None:
    """A worker's records (every scenario it collected; those it ran with their outcome) go to
    the controller with its session's end (xdist's workeroutput); it writes no report."""
    config.workeroutput[WORKER_OUTPUT] = json.dumps(  # type: ignore[attr-defined]
        {
            "records": redact_text(records_to_text(state.run.scenarios.values())),
            # What this worker met, for the controller's sweep of the files it writes and
            # of Allure's, which the workers write (a local pipe; never printed).
            "secrets": known_secrets(),
            "started_in_allure": sorted(state.started_in_allure),
            "versions": state.versions.as_lists(),
            "deselected": state.run.deselected,
        }
    )


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist, on the controller: a worker has finished (or crashed: then it handed nothing)."""
    handed = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT)
    if handed:
        worker = json.loads(handed)
        for value in worker.pop("secrets", []):
            remember(value)
        reporting_of(node.config).from_workers.append(worker)


def _merge_workers(state: Reporting) -> None:
    """One run from the workers' records: in collection order (every worker collected every
    scenario), each scenario as the worker that ran it saw it."""
    if not state.from_workers:
        return
    merged: dict[str, ScenarioRecord] = {}
    for handed in state.from_workers:
        for record in records_from_text(handed["records"]):
            known = merged.get(record.nodeid)
            if known is None or (known.status == "not run" and record.status != "not run"):
                merged[record.nodeid] = record
        state.started_in_allure.update(handed["started_in_allure"])
        for what, versions in handed["versions"].items():
            for version in versions:
                state.versions.record(what, version)
        for stage, count in handed["deselected"].items():  # the same on every worker
            state.run.deselected[stage] = max(state.run.deselected.get(stage, 0), count)
    # A feature file that cannot be read is reported by the controller too: the workers' win.
    own = {k: v for k, v in state.run.scenarios.items() if k not in merged}
    state.run.scenarios = {**merged, **own}
    for nodeid, text in state.red_seen.items():  # ran on a worker that crashed before its end
        crashed = state.run.scenarios.get(nodeid)
        if crashed is not None and crashed.status == "not run":
            crashed.status, crashed.message = "broken", f"xdist: {text}"


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


# -- helpers -------------------------------------------------------------------------------------
def _has_work(state: Reporting) -> bool:
    return bool(state.run.scenarios)


def _listener(state: Reporting, config: pytest.Config) -> Any:
    if state.listener is None and state.results_dir is not None:
        state.listener = allure_results.adapter_listener(config)
    return state.listener
