"""The pytest plugin: options, settings, collecting ``.feature`` files, and failure output.

``pytest features/stage2`` and ``pytest features/stage2/milvus.feature`` collect Gherkin
scenarios directly, with no per-feature test modules. A red step's report shows the step
and stagecheck's explanation instead of a traceback through the framework; its evidence is
attached to the Allure result and shown as a report section.

It also runs the @smoke preflight first (a red one stops the run), tries again the scenarios
that opted in to retries when their red may go away (``stagecheck.retries`` says which), and
under pytest-xdist (``-n N``) gives every worker the controller's run id and keeps the
preflight a first phase across the workers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
import signal
import sys
import tempfile
import threading
import time
import types
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from _pytest.runner import call_and_report, show_test_item
from pytest_bdd.exceptions import GherkinParseError, StepDefinitionNotFoundError
from pytest_bdd.parser import Feature, Scenario, Step

from stagecheck.catalogue import closest_sentences
from stagecheck.config import Settings, load_settings, run_root
from stagecheck.engine.outcome import Evidence, StepFailure
from stagecheck.errors import CannotRunHere, ConfigError, Planned, StagecheckError
from stagecheck.kube.kubeconfig import ClusterAccess, load_access
from stagecheck.redaction import known_secrets, redact_text, remember
from stagecheck.retries import (
    ATTEMPT,
    FLAKY_TAG,
    MAX_RETRIES,
    Attempting,
    attempts_allowed,
    retry_reason,
)

SETTINGS = pytest.StashKey[Settings]()
# The target's kubeconfig as read at start, or why it cannot be used (raised when first needed).
ACCESS = pytest.StashKey[ClusterAccess | StagecheckError]()
FAILED_STEP = pytest.StashKey[str]()
CALL_REPORT = pytest.StashKey[pytest.TestReport]()
CALL_ERROR = pytest.StashKey[BaseException]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stagecheck")
    group.addoption(
        "--target",
        help="what cluster to talk to: sandbox (default), kind[:NAME], cluster:CONTEXT, "
        "or a target defined in stagecheck.toml (env STAGECHECK_TARGET)",
    )
    group.addoption("--kubeconfig", help="kubeconfig file for a kind or cluster target")
    group.addoption(
        "--cleanup",
        choices=["always", "on-success", "never"],
        help="what to do with objects a scenario created: always delete them (default), "
        "delete them when the scenario passed, or keep them (env STAGECHECK_CLEANUP)",
    )
    group.addoption(
        "--no-preflight-stop",
        action="store_true",
        default=False,
        help="run every scenario even when a @smoke scenario (the preflight) is red",
    )
    group.addoption(
        "--retries",
        type=_retries,
        default=0,
        metavar="N",
        help=f"try a scenario whose red is transient (a service that did not answer, a "
        f"timeout) up to N more times; @{FLAKY_TAG} scenarios are retried without it "
        "(README: Retries)",
    )
    group.addoption(
        "--plan",
        action="store_true",
        default=False,
        help="list what provisioning steps would apply, write nothing, skip the scenarios",
    )
    group.addoption(
        "--quit-mesh-sidecar",
        action="store_true",
        default=False,
        help="when the run ends, stop the pod's own istio-proxy sidecar (a Job that joined "
        "the mesh to reach mTLS-only Services completes only once its proxy stops)",
    )
    group.addoption(
        "--fail-on-skipped",
        action="store_true",
        default=False,
        help="a scenario that was skipped (it would write on a read-only target, or cannot "
        "run here) fails the run: for a job whose exit must mean every scenario held",
    )
    group.addoption(
        "--allow-writes",
        action="store_true",
        default=False,
        help="let this run change a kind or cluster target (the sandbox always allows it)",
    )


def _retries(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number <= MAX_RETRIES:
        raise pytest.UsageError(f"--retries {value!r}: give a number from 0 to {MAX_RETRIES}")
    return number


@pytest.hookimpl(tryfirst=True)  # before allure-pytest-bdd's, whichever was installed first
def pytest_configure(config: pytest.Config) -> None:
    try:
        settings = load_settings(
            root=run_root(config.args, config.invocation_params.dir, config.rootpath),
            target_option=config.getoption("--target"),
            kubeconfig_option=config.getoption("--kubeconfig"),
            allow_writes_option=config.getoption("--allow-writes"),
            cleanup_option=config.getoption("--cleanup"),
            plan_option=config.getoption("--plan"),
        )
    except ConfigError as error:
        raise pytest.UsageError(f"stagecheck: {error}") from None
    worker = worker_input(config)
    if RUN_ID in worker:  # an xdist worker: one run, one run id (labels, user agent, reports)
        settings = dataclasses.replace(
            settings, run=dataclasses.replace(settings.run, id=str(worker[RUN_ID]))
        )
    config.stash[SETTINGS] = settings
    try:
        config.stash[ACCESS] = load_access(config.stash[SETTINGS].target)
    except StagecheckError as error:
        config.stash[ACCESS] = error
    global _current_config
    _current_config = config
    # Clients log every request at INFO (some libraries turn that on when imported): a red
    # step's report should show stagecheck's explanation, not a wall of URLs.
    for noisy in ("httpx", "httpcore", "pymilvus", "llama_stack_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # A run stopped by SIGTERM (a CI timeout, kill) unwinds like Ctrl-C: cleanup still runs.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def scenario_passed(item: pytest.Item) -> bool:
    report = item.stash.get(CALL_REPORT, None)
    return report is not None and report.passed


_current_config: pytest.Config | None = None


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = config.stash[SETTINGS]
    writes = "writes allowed" if settings.target.allow_writes else "read-only"
    mode = ", plan only" if settings.run.plan else ""
    lines = [
        f"stagecheck: {settings.target.describe()}, {writes}{mode}; run {settings.run.id} "
        f"(cleanup {settings.run.cleanup})"
    ]
    access = config.stash[ACCESS]
    if isinstance(access, ClusterAccess):
        lines.append(
            f"stagecheck: {access.server} as {access.describe_credentials()}; "
            f"{access.describe_tls()}"
        )
        if not access.verifies_tls:
            lines.append(f"stagecheck: WARNING: {access.describe_tls()}")
    return lines


def settings_of(config: pytest.Config) -> Settings:
    return config.stash[SETTINGS]


def access_of(config: pytest.Config) -> ClusterAccess:
    """The target's kubeconfig as read at start; raises what made it unusable."""
    access = config.stash[ACCESS]
    if isinstance(access, StagecheckError):
        raise access
    return access


# -- collecting .feature files -------------------------------------------------------------------
class FeatureFile(pytest.Module):
    """A .feature file collected as a module whose tests are its scenarios."""

    def _getobj(self) -> types.ModuleType:
        module = types.ModuleType(f"feature_{self.path.stem}")
        module.__file__ = str(self.path)
        # pytest-bdd's scenarios() binds tests into its caller's module namespace.
        source = "from pytest_bdd import scenarios\nscenarios(__feature_path__)\n"
        module.__dict__["__feature_path__"] = str(self.path)
        try:
            exec(compile(source, str(self.path), "exec"), module.__dict__)
        except GherkinParseError as error:
            raise self.CollectError(gherkin_error(self.path, error)) from None
        return module


def gherkin_reason(error: GherkinParseError) -> str:
    """What is wrong with a feature file that is not valid Gherkin, in one line."""
    text = getattr(error, "line_content", "").strip()
    reason = str(getattr(error, "message", error)).split(". Check")[0]
    return f"not valid Gherkin: {reason}" + (f": {text!r}" if text else "")


def gherkin_error(path: Path, error: GherkinParseError) -> str:
    return f"{path}:{getattr(error, 'line', 0)}: {gherkin_reason(error)}"


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix == ".feature":
        return FeatureFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(tryfirst=True)  # before pytest-bdd's own (first result wins), which marks it
def pytest_bdd_apply_tag(tag: str, function: Any) -> bool | None:
    # Tags become markers (so `-m mesh` works); declare them so --strict-markers accepts them.
    config = _current_config
    if config is not None:
        config.addinivalue_line("markers", f"{tag}: Gherkin tag @{tag}")
    return None


# -- failure output ------------------------------------------------------------------------------
MISSING_STEP = pytest.StashKey[tuple[str, str, str]]()  # (keyword and text, file:line, text)


@pytest.hookimpl(optionalhook=True)
def pytest_bdd_step_func_lookup_error(
    request: pytest.FixtureRequest,
    feature: Feature,
    scenario: Scenario,
    step: Step,
    exception: Exception,
) -> None:
    """An undefined step at run time: remembered, so its report gives the lint's help."""
    request.node.stash[MISSING_STEP] = (*_step_at(feature, step), step.name)


def _step_at(feature: Feature, step: Step) -> tuple[str, str]:
    """A step as written (``Then the ...``), and where: ``file:line``."""
    return f"{step.keyword} {step.name}", f"{feature.rel_filename}:{step.line_number}"


@pytest.hookimpl(tryfirst=True)  # before allure-pytest-bdd closes the step: evidence goes on it
def pytest_bdd_step_error(
    request: pytest.FixtureRequest,
    feature: Feature,
    scenario: Scenario,
    step: Step,
    exception: Exception,
) -> None:
    written, where = _step_at(feature, step)
    request.node.stash[FAILED_STEP] = f"{written}  ({where})"
    if isinstance(exception, StepFailure):
        for evidence in exception.evidence:
            _attach(request.node, evidence)


def _attach(item: pytest.Item, evidence: Evidence) -> None:
    evidence = dataclasses.replace(evidence, text=redact_text(evidence.text))
    if evidence.media_type == "text/plain":  # whole objects go to the report, not the terminal
        item.add_report_section("call", f"evidence: {evidence.name}", evidence.text)
    try:
        import allure

        kind = (
            allure.attachment_type.YAML
            if evidence.media_type == "application/yaml"
            else allure.attachment_type.TEXT
        )
        allure.attach(evidence.text, name=evidence.name, attachment_type=kind)
    except ImportError:  # pragma: no cover - allure-pytest-bdd is a dependency
        pass


# -- the preflight: @smoke scenarios first; when one is red, the rest of the run is not run ------
SMOKE = "smoke"
PREFLIGHT_RED = "the preflight is red"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The stage's @smoke scenarios (its operators and custom resources are in place) run
    first, in their order; everything else after them, in its order."""
    items.sort(key=lambda item: item.get_closest_marker(SMOKE) is None)


def _preflight_stops(config: pytest.Config) -> bool:
    return not config.getoption("--no-preflight-stop") and not config.option.collectonly


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """A red @smoke scenario stops the run (serial, or the xdist controller, which sees every
    worker's final reports and tells the workers through the gate's folder)."""
    config = _current_config
    if config is None or is_worker(config):
        return
    gate = config.stash.get(CONTROLLER_GATE, None)
    if report.failed and SMOKE in report.keywords and _preflight_stops(config):
        session = config.stash[SESSION]
        if not session.shouldfail:
            session.shouldfail = (
                f"{PREFLIGHT_RED} ({report.nodeid.split('::')[-1].removeprefix('test_')}): the "
                "stage's operators or custom resources are not in place, so its other scenarios "
                "were not run (--no-preflight-stop runs them)"
            )
            if gate is not None:
                gate.stop(str(session.shouldfail))
    if gate is not None and report.when in ("teardown", "???"):  # "???": a crashed worker's
        gate.done(report.nodeid)


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[SESSION] = session


SESSION = pytest.StashKey[pytest.Session]()


# -- under pytest-xdist (-n N): one run id, and the preflight as a first phase -------------------
RUN_ID = "stagecheck_run_id"
GATE_DIR = "stagecheck_preflight_gate"
CONTROLLER_GATE = pytest.StashKey["PreflightGate"]()
WORKER_GATE = pytest.StashKey["PreflightGate"]()


def worker_input(config: pytest.Config) -> dict[str, Any]:
    """What the xdist controller handed this worker; empty outside a worker."""
    return dict(getattr(config, "workerinput", {}))


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


class PreflightGate:
    """A folder shared by the controller and its workers. The controller marks each scenario
    done as its last report arrives, and writes ``stop`` when a @smoke scenario is red; a
    worker starts a scenario only when every @smoke scenario is done, and none when stopped.
    (A worker runs a scenario only once it holds the next one too, so the controller cannot
    hold the others back itself.)"""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _marker(self, nodeid: str) -> Path:
        return self.folder / ("done-" + hashlib.sha1(nodeid.encode()).hexdigest())

    def done(self, nodeid: str) -> None:
        self._marker(nodeid).touch()

    def stop(self, reason: str) -> None:
        partial = self.folder / "stop.partial"
        partial.write_text(reason, encoding="utf-8")
        partial.replace(self.folder / "stop")

    def stopped(self) -> str | None:
        try:
            return (self.folder / "stop").read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def wait(self, smoke: list[str]) -> str | None:
        """Why the run stopped, or None once every @smoke scenario is done green."""
        while True:
            reason = self.stopped()
            if reason is not None or all(self._marker(n).exists() for n in smoke):
                return reason
            time.sleep(0.05)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist, on the controller, for each worker it starts."""
    config: pytest.Config = node.config
    node.workerinput[RUN_ID] = config.stash[SETTINGS].run.id
    if _preflight_stops(config):
        if CONTROLLER_GATE not in config.stash:
            folder = Path(tempfile.mkdtemp(prefix="stagecheck-preflight-"))
            config.stash[CONTROLLER_GATE] = PreflightGate(folder)
        node.workerinput[GATE_DIR] = str(config.stash[CONTROLLER_GATE].folder)


def pytest_unconfigure(config: pytest.Config) -> None:
    gate = config.stash.get(CONTROLLER_GATE, None)
    if gate is not None:
        shutil.rmtree(gate.folder, ignore_errors=True)
    if config.getoption("quit_mesh_sidecar", False) and not hasattr(config, "workerinput"):
        from stagecheck.sidecar import quit_own_sidecar  # last of all: the reports are written

        sys.stderr.write(f"stagecheck: {quit_own_sidecar()}\n")


SMOKE_IDS = pytest.StashKey[list[str]]()


def pytest_collection_finish(session: pytest.Session) -> None:
    folder = worker_input(session.config).get(GATE_DIR)
    if folder:
        session.config.stash[WORKER_GATE] = PreflightGate(Path(folder))
        session.config.stash[SMOKE_IDS] = [
            i.nodeid for i in session.items if i.get_closest_marker(SMOKE) is not None
        ]


def _gate(item: pytest.Item) -> str | None:
    """On an xdist worker: why this scenario must not start (a red preflight), after waiting
    for the preflight when it is not one of its scenarios."""
    gate = item.config.stash.get(WORKER_GATE, None)
    if gate is None:
        return None
    if item.get_closest_marker(SMOKE) is not None:
        return gate.stopped()
    return gate.wait(item.config.stash[SMOKE_IDS])


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    """xdist ends a run stopped by a worker as an interrupt (exit code 2); a red preflight is
    a red run (exit code 1), as without xdist."""
    try:
        return (yield)
    except KeyboardInterrupt as interrupted:
        stopped = str(session.shouldfail or "")
        from_xdist = type(interrupted).__module__ == "xdist.dsession"
        if from_xdist and stopped.startswith(PREFLIGHT_RED):
            return True
        raise


# -- bounded retries (stagecheck.retries says which reds may be tried again) ---------------------
@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    stopped = _gate(item)
    if stopped is not None:
        item.session.shouldfail = stopped  # the worker stops; the scenario is not run
        return True
    tags = {m.name for m in item.iter_markers()}
    limit = attempts_allowed(tags, item.config.getoption("--retries"))
    if limit <= 1 or not isinstance(item.parent, FeatureFile):
        return None  # pytest's own protocol
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    number = 1
    while True:
        reports = _attempt(item, nextitem, number, limit, FLAKY_TAG in tags)
        if item.stash[ATTEMPT].retry is None or reports[-1].failed:
            break
        number += 1
    for report in reports:  # the last attempt's: JUnit, the terminal, the exit code
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _attempt(
    item: pytest.Item, nextitem: pytest.Item | None, number: int, limit: int, tagged: bool
) -> list[pytest.TestReport]:
    """One run of the scenario's set-up, steps and cleanup, as pytest's runtestprotocol does
    (_pytest/runner.py); a red that will be tried again tears down only the scenario's own
    fixtures, so its module's and the session's stay for the next attempt."""
    item.stash[ATTEMPT] = Attempting(number, limit)
    if CALL_ERROR in item.stash:
        del item.stash[CALL_ERROR]
    hasrequest = hasattr(item, "_request")
    if hasrequest and not item._request:  # type: ignore[attr-defined]
        item._initrequest()  # type: ignore[attr-defined]
    try:
        reports = [call_and_report(item, "setup", log=False)]
        if reports[0].passed:
            setup_only = item.config.getoption("setuponly", False)
            if item.config.getoption("setupshow", False):
                show_test_item(item, add_space=not setup_only)
            if not setup_only:
                reports.append(call_and_report(item, "call", log=False))
                error = item.stash.get(CALL_ERROR, None)
                if reports[-1].failed and number < limit and error is not None:
                    reason = retry_reason(error, tagged)
                    item.stash[ATTEMPT] = Attempting(number, limit, reason)
        again = item.stash[ATTEMPT].retry is not None
        if item.session.shouldfail or item.session.shouldstop:
            again, nextitem = False, None
            item.stash[ATTEMPT] = Attempting(number, limit)
        after: Any = item.parent if again else nextitem  # teardown_exact reads its listchain()
        reports.append(call_and_report(item, "teardown", log=False, nextitem=after))
        if again and reports[-1].failed:  # a cleanup that failed ends the retries: its red stands
            item.session._setupstate.teardown_exact(nextitem)
    finally:
        if hasrequest:
            item._request = False  # type: ignore[attr-defined]
            item.funcargs = None  # type: ignore[attr-defined]
    return reports


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    excinfo = call.excinfo
    if excinfo is not None and isinstance(excinfo.value, Planned | CannotRunHere):
        # Plan mode: the scenario is skipped, its report says what it would have changed.
        # A check the target cannot perform is skipped with the reason: never passed.
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {excinfo.value}")
        return report
    if call.when == "call":
        item.stash[CALL_REPORT] = report
        if excinfo is not None:
            item.stash[CALL_ERROR] = excinfo.value
    if (
        excinfo is not None
        and isinstance(excinfo.value, StepFailure | StagecheckError | StepDefinitionNotFoundError)
        and item.config.getoption("tbstyle") in ("auto", "short", "line")
    ):
        step = item.stash.get(FAILED_STEP, "")
        said = str(excinfo.value)
        if isinstance(excinfo.value, StepDefinitionNotFoundError) and MISSING_STEP in item.stash:
            step, missing = "", item.stash[MISSING_STEP]  # the lint's words, and its help
            said = f"undefined step: {missing[0]}  ({missing[1]}){closest_sentences(missing[2])}"
        report.longrepr = f"{step}\n{said}" if step else said
    _redact_report(report)
    if is_worker(item.config):  # the controller prints it: it must know this worker's secrets
        handed = item.config.stash.get(HANDED_SECRETS, set())
        new = [v for v in known_secrets() if v not in handed]
        handed.update(new)
        item.config.stash[HANDED_SECRETS] = handed
        setattr(report, SECRETS_ATTRIBUTE, new)  # noqa: B010 - travels with the report only
    return report


HANDED_SECRETS = pytest.StashKey[set[str]]()
SECRETS_ATTRIBUTE = "stagecheck_new_secrets"  # a report's, from a worker to the controller


@pytest.hookimpl(tryfirst=True, specname="pytest_runtest_logreport")
def pytest_runtest_logreport_secrets(report: pytest.TestReport) -> None:
    """On the pytest-xdist controller, before any plugin shows or writes the report: the
    secrets its worker met so far are remembered and the report is redacted again, so a value
    one worker read never reaches the terminal through another worker's report."""
    if _current_config is None or is_worker(_current_config):
        return  # a worker sends it as it is
    handed = report.__dict__.pop(SECRETS_ATTRIBUTE, None)
    if handed is None:
        return
    for value in handed:
        remember(value)
    _redact_report(report)


def _redact_report(report: pytest.TestReport) -> None:
    """What the terminal, JUnit and a pytest-xdist controller get of a phase, with known
    secrets and credential shapes cut out: the traceback in any --tb style (--tb=long shows
    the step's arguments), the captured output and logs."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, reason)
        report.longrepr = (*longrepr[:2], redact_text(longrepr[2]))
    elif longrepr is not None:
        text = str(longrepr)
        clean = redact_text(text)
        if clean != text:  # a plain string then: pytest prints and serialises it as is
            report.longrepr = clean
    report.sections = [(title, redact_text(content)) for title, content in report.sections]
