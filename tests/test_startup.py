"""Start-up pays only for what the collected features use: a Kubernetes-only run loads none of
the data-plane clients (pymilvus and pandas, llama-stack-client, minio) nor the kubernetes
package (only port-forward tunnels need it), nor httpx's command-line client (click, rich). No
timing here: the modules loaded say it."""

from __future__ import annotations

import re
from pathlib import Path

from stagecheck.kube.client import Kube
from tests.support import ROOT, run_pytest

FEATURE = str(ROOT / "tests" / "features" / "kubernetes" / "namespaces.feature")
HEAVY = ("pymilvus", "pandas", "llama_stack_client", "minio", "kubernetes", "click", "rich")


def loaded(importtime_output: str) -> set[str]:
    """Top-level modules a run imported, from Python's -X importtime report."""
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\w+)", importtime_output, re.M))


def test_a_kubernetes_only_run_loads_no_data_plane_client(
    world: Kube, sandbox_args: list[str], tmp_path: Path
) -> None:
    # -s: pytest would otherwise capture the report of what its plugins import.
    run = run_pytest([*sandbox_args, "-s", FEATURE], tmp_path, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert run.result("The stage namespace exists").outcome == "passed"
    modules = loaded(run.output)
    assert "pytest_bdd" in modules and "httpx" in modules  # the report is read right
    assert modules.isdisjoint(HEAVY), sorted(modules & set(HEAVY))
