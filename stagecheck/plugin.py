"""The pytest plugin: options, settings, collecting ``.feature`` files, and failure output.

``pytest features/stage2`` and ``pytest features/stage2/milvus.feature`` collect Gherkin
scenarios directly, with no per-feature test modules. A red step's report shows the step
and stagecheck's explanation instead of a traceback through the framework; its evidence is
attached to the Allure result and shown as a report section.
"""

from __future__ import annotations

import logging
import signal
import threading
import types
from pathlib import Path
from typing import Any

import pytest
from pytest_bdd.exceptions import GherkinParseError, StepDefinitionNotFoundError
from pytest_bdd.parser import Feature, Scenario, Step

from stagecheck.config import Settings, load_settings
from stagecheck.engine.outcome import Evidence, StepFailure
from stagecheck.engine.provision import Planned
from stagecheck.errors import CannotRunHere, ConfigError, StagecheckError
from stagecheck.kube.kubeconfig import ClusterAccess, load_access

SETTINGS = pytest.StashKey[Settings]()
# The target's kubeconfig as read at start, or why it cannot be used (raised when first needed).
ACCESS = pytest.StashKey[ClusterAccess | StagecheckError]()
FAILED_STEP = pytest.StashKey[str]()
CALL_REPORT = pytest.StashKey[pytest.TestReport]()


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
        "--plan",
        action="store_true",
        default=False,
        help="list what provisioning steps would apply, write nothing, skip the scenarios",
    )
    group.addoption(
        "--allow-writes",
        action="store_true",
        default=False,
        help="let this run change a kind or cluster target (the sandbox always allows it)",
    )


def pytest_configure(config: pytest.Config) -> None:
    try:
        config.stash[SETTINGS] = load_settings(
            root=config.rootpath,
            target_option=config.getoption("--target"),
            kubeconfig_option=config.getoption("--kubeconfig"),
            allow_writes_option=config.getoption("--allow-writes"),
            cleanup_option=config.getoption("--cleanup"),
            plan_option=config.getoption("--plan"),
        )
    except ConfigError as error:
        raise pytest.UsageError(f"stagecheck: {error}") from None
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


def pytest_bdd_apply_tag(tag: str, function: Any) -> bool | None:
    # Tags become markers (so `-m mesh` works); declare them so --strict-markers accepts them.
    config = _current_config
    if config is not None:
        config.addinivalue_line("markers", f"{tag}: Gherkin tag @{tag}")
    return None


# -- failure output ------------------------------------------------------------------------------
@pytest.hookimpl(tryfirst=True)  # before allure-pytest-bdd closes the step: evidence goes on it
def pytest_bdd_step_error(
    request: pytest.FixtureRequest,
    feature: Feature,
    scenario: Scenario,
    step: Step,
    exception: Exception,
) -> None:
    request.node.stash[FAILED_STEP] = (
        f"{step.keyword} {step.name}  ({feature.rel_filename}:{step.line_number})"
    )
    if isinstance(exception, StepFailure):
        for evidence in exception.evidence:
            _attach(request.node, evidence)


def _attach(item: pytest.Item, evidence: Evidence) -> None:
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The stage's @smoke scenarios (its operators and custom resources are in place) run
    first, in their order; everything else after them, in its order."""
    items.sort(key=lambda item: item.get_closest_marker(SMOKE) is None)


def _stop_after_red_preflight(item: pytest.Item, report: pytest.TestReport) -> None:
    if not report.failed or item.get_closest_marker(SMOKE) is None:
        return
    if item.config.getoption("--no-preflight-stop") or item.session.shouldfail:
        return
    item.session.shouldfail = (
        f"the preflight is red ({item.name.removeprefix('test_')}): the stage's operators or "
        "custom resources are not in place, so its other scenarios were not run "
        "(--no-preflight-stop runs them)"
    )


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
    _stop_after_red_preflight(item, report)
    if (
        excinfo is not None
        and isinstance(excinfo.value, StepFailure | StagecheckError | StepDefinitionNotFoundError)
        and item.config.getoption("tbstyle") in ("auto", "short", "line")
    ):
        step = item.stash.get(FAILED_STEP, "")
        report.longrepr = f"{step}\n{excinfo.value}" if step else str(excinfo.value)
    return report
