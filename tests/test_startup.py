"""Start-up pays only for what the collected features use: a Kubernetes-only run loads none of
the data-plane clients (pymilvus and pandas, llama-stack-client, minio) nor the kubernetes
package (only port-forward tunnels need it), nor httpx's command-line client (click, rich), nor
stagecheck's own engine behind services and writes. No timing here: the modules loaded say it.
And the heap the imports built is frozen before the first step, so pytest's and the
interpreter's full collections do not walk it (``stagecheck.heap``)."""

from __future__ import annotations

import re
from pathlib import Path

from stagecheck.kube.client import Kube
from tests.support import ROOT, run_pytest

FEATURE = str(ROOT / "tests" / "features" / "kubernetes" / "namespaces.feature")
HEAVY = ("pymilvus", "pandas", "llama_stack_client", "minio", "kubernetes", "click", "rich")
# stagecheck's own engine behind services and writes: steps import it where first used.
SERVICE_ENGINE = (
    "stagecheck.engine.dataplane",
    "stagecheck.engine.endpoints",
    "stagecheck.engine.s3",
    "stagecheck.engine.pipelines",
    "stagecheck.engine.docling",
    "stagecheck.engine.probe",
    "stagecheck.engine.provision",
    "stagecheck.engine.runs",
)  # (not stagecheck.sandbox: tests/conftest.py, on the path to FEATURE, imports it)


def loaded(importtime_output: str) -> set[str]:
    """The modules a run imported (dotted names), from Python's -X importtime report."""
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+([\w.]+)", importtime_output, re.M))


# A plugin of the sub-run's own: how many objects are frozen when its first step runs.
PROBE = """
import gc

def pytest_runtest_call(item):
    print(f"frozen objects at the first step: {gc.get_freeze_count()}")
"""


def test_a_kubernetes_only_run_loads_no_data_plane_client(
    world: Kube, sandbox_args: list[str], tmp_path: Path
) -> None:
    (tmp_path / "freeze_probe.py").write_text(PROBE)
    # -s: pytest would otherwise capture the report of what its plugins import.
    run = run_pytest(
        [*sandbox_args, "-s", "-p", "freeze_probe", FEATURE],
        tmp_path,
        env={"PYTHONPROFILEIMPORTTIME": "1", "PYTHONPATH": str(tmp_path)},
    )
    assert run.result("The stage namespace exists").outcome == "passed"
    modules = loaded(run.output)
    assert "pytest_bdd" in modules and "httpx" in modules  # the report is read right
    assert "stagecheck.engine.kubernetes" in modules
    assert modules.isdisjoint(HEAVY), sorted(modules & set(HEAVY))
    assert modules.isdisjoint(SERVICE_ENGINE), sorted(modules & set(SERVICE_ENGINE))
    frozen = re.search(r"frozen objects at the first step: (\d+)", run.output)
    assert frozen is not None, run.output[-2000:]
    # The containers of every module the run imported. For scale: importing pytest and
    # pytest-bdd alone makes about 32,000, a bare interpreter 8,000, an unfrozen heap 0.
    assert int(frozen.group(1)) > 40_000, frozen.group(0)
