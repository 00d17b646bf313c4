"""Helpers for the framework's own tests: apply a world of objects, run features in a
sub-process the way a user would, and read back each scenario's outcome and message."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pytest_bdd.scenario import make_python_name

from stagecheck.kube.client import Kube
from stagecheck.sandbox.controlplane import ControlPlane

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class ScenarioResult:
    outcome: str  # passed, failed, error, skipped
    message: str
    seconds: float


@dataclass(frozen=True)
class Run:
    returncode: int
    output: str
    scenarios: dict[str, ScenarioResult]
    seconds: float

    def result(self, scenario: str) -> ScenarioResult:
        return self.scenarios[make_python_name(scenario)]


def run_pytest(
    args: list[str],
    tmp: Path,
    env: dict[str, str] | None = None,
    python: str = sys.executable,
    cwd: Path = ROOT,
) -> Run:
    """Run ``pytest ARGS`` from the project root as a user would, with a JUnit file to read."""
    junit = tmp / f"junit-{time.monotonic_ns()}.xml"
    started = time.monotonic()
    completed = subprocess.run(
        [python, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}", *args],
        cwd=cwd,
        # The framework's sub-runs write their reports beside them, never over the user's.
        env={**os.environ, "STAGECHECK_REPORTS": str(tmp / "reports"), **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.monotonic() - started
    scenarios = read_junit(junit) if junit.exists() else {}
    return Run(completed.returncode, completed.stdout + completed.stderr, scenarios, seconds)


def read_junit(path: Path) -> dict[str, ScenarioResult]:
    found: dict[str, ScenarioResult] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        if not case.get("name"):
            continue  # pytest writes a nameless case when a run is stopped before any test
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
                message = (node.text or node.get("message") or "").strip()
        name = case.get("name", "")
        name = name.removeprefix("test_").split("[", 1)[0]
        result = ScenarioResult(outcome, message, float(case.get("time", 0)))
        known = found.get(name)  # an outline's examples share a name: the worst one speaks
        if known is None or _SEVERITY.index(outcome) > _SEVERITY.index(known.outcome):
            found[name] = result
    return found


_SEVERITY = ("passed", "skipped", "failed", "error")


def installed_stagecheck(tmp: Path) -> Path:
    """A virtual environment with stagecheck installed from a wheel built from this tree, as
    ``pip install`` gives a stage repository; its Python. Its dependencies are this suite's
    (a path line to them, so nothing is downloaded); stagecheck itself is the wheel's copy."""
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "stagecheck", source / "stagecheck", ignore=shutil.ignore_patterns("__pycache__")
    )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", tmp / "dist", source], check=True)
    (wheel,) = (tmp / "dist").glob("stagecheck-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    subprocess.run([*pip, "--python", python, "install", "--no-deps", wheel], check=True)
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "_suite_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def stage_vars() -> dict[str, str]:
    """The stage's names, as this project's sandbox target declares them (stagecheck.toml)."""
    with (ROOT / "stagecheck.toml").open("rb") as config:
        return dict(tomllib.load(config)["targets"]["sandbox"]["vars"])


def sandbox_config() -> str:
    """A stage repository's stagecheck.toml for the sandbox: the default target, the stage's
    names in its vars."""
    names = ", ".join(f"{k} = {json.dumps(v)}" for k, v in stage_vars().items())
    return (
        f'default-target = "sandbox"\n\n[targets.sandbox]\ntype = "sandbox"\nvars = {{ {names} }}\n'
    )


def stage_repository(folder: Path, config: str | None = None) -> Path:
    """A stage repository as its owners keep one: ``features/stage2`` (with its documents) and a
    ``stagecheck.toml``, nothing else: no conftest, no steps, no copy of this project."""
    shutil.copytree(ROOT / "features" / "stage2", folder / "features" / "stage2")
    (folder / "stagecheck.toml").write_text(sandbox_config() if config is None else config)
    return folder


@contextmanager
def own_plane(tmp_path_factory: Any, name: str) -> Iterator[ControlPlane]:
    """A control plane of a test directory's own, stopped when the directory is done: objects and
    CRDs one directory installs are never seen by another's tests."""
    plane = ControlPlane(ROOT, tmp_path_factory.mktemp(name), name=f"stagecheck-{name}")
    plane.up()
    try:
        yield plane
    finally:
        plane.down()


@contextmanager
def client_of(plane: ControlPlane) -> Iterator[Kube]:
    client = plane.connect()
    try:
        yield client
    finally:
        client.close()


def two_context_kubeconfig(plane: ControlPlane, path: Path) -> tuple[Path, str]:
    """The plane's kubeconfig plus a dead 'elsewhere' context that is the current one."""
    config = yaml.safe_load(plane.kubeconfig.read_text())
    real_context = config["contexts"][0]["name"]
    config["clusters"].append({"name": "elsewhere", "cluster": {"server": "https://127.0.0.1:1"}})
    config["contexts"].append(
        {
            "name": "elsewhere",
            "context": {"cluster": "elsewhere", "user": config["users"][0]["name"]},
        }
    )
    config["current-context"] = "elsewhere"
    path.write_text(yaml.safe_dump(config))
    return path, real_context


def run_id(output: str) -> str:
    """The run id a stagecheck run prints in its header."""
    found = re.search(r"; run (run-[\w-]+) ", output)
    assert found, f"no run id in:\n{output[:2000]}"
    return found.group(1)


WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


def audit_events(plane: ControlPlane, run: str) -> list[dict[str, object]]:
    """The API requests one run made, from the API server's audit log (User-Agent has the id)."""
    time.sleep(1.2)  # the audit log is written in batches of up to a second
    lines = plane.audit_log.read_text().splitlines()
    return [e for e in map(json.loads, lines) if f"run/{run}" in e.get("userAgent", "")]


def issue_token(kube: Kube, namespace: str, account: str) -> str:
    """A real, short-lived token of a ServiceAccount (a TokenRequest)."""
    return kube.request_token(namespace, account, 3600)


def token_kubeconfig(plane: ControlPlane, path: Path, user: dict[str, object]) -> Path:
    """The plane's kubeconfig with its client certificate replaced by ``user`` (a token, a
    tokenFile or an exec plugin): what `oc login` or a ServiceAccount kubeconfig looks like."""
    config = yaml.safe_load(plane.kubeconfig.read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    config["users"] = [{"name": "token-user", "user": user}]
    context["context"]["user"] = "token-user"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def usernames(events: list[dict[str, object]]) -> set[str]:
    return {str(e["user"]["username"]) for e in events}  # type: ignore[index]


def pod_environment(
    plane: ControlPlane, kube: Kube, namespace: str, account: str, where: Path
) -> dict[str, str]:
    """The service account volume and the variables a pod of ``account`` in ``namespace`` gets
    (a real TokenRequest token, the cluster's CA, the namespace; KUBERNETES_SERVICE_*)."""
    where.mkdir()
    (where / "token").write_text(issue_token(kube, namespace, account))
    (where / "namespace").write_text(namespace)
    cluster = yaml.safe_load(plane.kubeconfig.read_text())["clusters"][0]["cluster"]
    (where / "ca.crt").write_bytes(Path(cluster["certificate-authority"]).read_bytes())
    server = urlsplit(cluster["server"])
    return {
        "KUBERNETES_SERVICE_HOST": str(server.hostname),
        "KUBERNETES_SERVICE_PORT": str(server.port),
        "STAGECHECK_SERVICEACCOUNT_DIR": str(where),  # the standard mount path, moved here
        "KUBECONFIG": str(where / "no-kubeconfig"),  # a pod has none: it must not be needed
    }


def linters_bin() -> Path:
    """Where scripts/build-linters keeps actionlint and tekton-lint (scripts/test builds them)."""
    done = subprocess.run(
        [str(ROOT / "scripts" / "build-linters"), "--print-bin"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return Path(done.stdout.strip())


class LocalHandler(http.server.BaseHTTPRequestHandler):
    """A test server's handler: ``reply`` sends a body; the request log stays quiet."""

    def reply(self, body: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def local_http(handler: type[LocalHandler]) -> Iterator[int]:
    """An HTTP server on loopback for the length of the block; yields its port."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


# -- comparing a run under pytest-xdist (-n N) with the same run made serially ------------------
_TIMINGS = [
    (re.compile(r"run-\d{8}-\d{6}-[0-9a-f]{4}"), "run-ID"),
    (re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC"), "WHEN"),
    # stagecheck.engine.durations.format_duration (4.2s, 45s, 1m05s, 2h03m) and status_page._ago
    (re.compile(r"\b\d+(?:\.\d+)?(?:h\d+m|m\d+s|s|m|h)\b"), "N s"),
    (re.compile(r"\b\d+ (?:s|min|h|days)\b"), "N s"),
    (re.compile(r"\(\d+ runs in a row\)"), "(N runs in a row)"),
]


def without_timings(text: str) -> str:
    """A report with its run id, times and durations blanked: what two runs of the same
    stage must agree on."""
    for pattern, replacement in _TIMINGS:
        text = pattern.sub(replacement, text)
    return text


def junit_cases(path: Path) -> list[tuple[str, str, str]]:
    """Each case of a stagecheck junit.xml: name, verdict (passed, failure, error, skipped,
    with the attempts note of a retried one) and its message, in the file's order."""
    cases = []
    for case in ET.parse(path).getroot().iter("testcase"):
        verdict = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
        message = "" if verdict is None else verdict.get("message", "")
        tag = "passed" if verdict is None else verdict.tag
        notes = " ".join(p.get("value", "") for p in case.iter("property"))
        cases.append((case.get("name", ""), f"{tag} {notes}".strip(), without_timings(message)))
    return cases


def summary_of(output: str) -> list[str]:
    """The terminal's stagecheck summary: from its first "stagecheck:" rule to "reports:"."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(r"^-+ stagecheck: ", line)), None)
    assert start is not None, output[-3000:]
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("reports: "))
    return [without_timings(line) for line in lines[start:end]]


def eventually(read: Callable[[], Any], timeout_s: float = 30.0, interval_s: float = 0.2) -> Any:
    """``read()`` until it gives a true value or the time is up; its last value either way."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = read()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval_s)
