"""Helpers for the framework's own tests: apply a world of objects, run features in a
sub-process the way a user would, and read back each scenario's outcome and message."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pytest_bdd.scenario import make_python_name

from stagecheck.kube.client import Kube
from stagecheck.kube.discovery import Discovery

ROOT = Path(__file__).resolve().parents[1]


def apply_world(kube: Kube, documents: Iterable[dict[str, Any]]) -> None:
    """Create each document (then its status), waiting for CRDs to be served before use."""
    discovery = Discovery(kube)
    for doc in documents:
        resource = _resolve_when_served(discovery, doc)
        namespace = doc["metadata"].get("namespace")
        status = doc.pop("status", None)
        kube.create(resource.collection_path(namespace), doc)
        if status is not None:
            path = resource.object_path(doc["metadata"]["name"], namespace) + "/status"
            kube.patch(path, {"status": status})


def _resolve_when_served(discovery: Discovery, doc: dict[str, Any]) -> Any:
    group = doc["apiVersion"].rpartition("/")[0]
    spelling = f"{doc['kind']}.{group}" if group else doc["kind"]
    deadline = time.monotonic() + 30
    while True:
        try:
            return discovery.resolve(spelling)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def load_yaml(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


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


def run_pytest(args: list[str], tmp: Path, env: dict[str, str] | None = None) -> Run:
    """Run ``pytest ARGS`` from the project root as a user would, with a JUnit file to read."""
    junit = tmp / f"junit-{time.monotonic_ns()}.xml"
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.monotonic() - started
    scenarios = _read_junit(junit) if junit.exists() else {}
    return Run(completed.returncode, completed.stdout + completed.stderr, scenarios, seconds)


def _read_junit(path: Path) -> dict[str, ScenarioResult]:
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
        found[name] = ScenarioResult(outcome, message, float(case.get("time", 0)))
    return found
