"""The stage-2 sandbox world, healthy and with its fault variants, under the stage-2 features:
green when healthy, red with the cause when broken."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stagecheck.config import load_settings
from stagecheck.sandbox.cli import start, stop
from stagecheck.sandbox.controlplane import ControlPlane
from stagecheck.sandbox.faults import FAULTS
from tests.support import ROOT, Run, run_pytest

FEATURES = str(ROOT / "features" / "stage2")


def stage2_run(tmp: Path, fault: str | None) -> Iterator[Run]:
    plane = ControlPlane(ROOT, tmp / "plane", name=f"stagecheck-{fault or 'healthy'}")
    cache = load_settings(ROOT).cache_dir
    try:
        start(ROOT, cache, plane, "stage2", FAULTS[fault] if fault else None)
        yield run_pytest(
            ["--target", "sandbox", "--kubeconfig", str(plane.kubeconfig), FEATURES], tmp
        )
    finally:
        stop(ROOT, cache, plane)


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    yield from stage2_run(tmp_path_factory.mktemp("healthy"), None)


@pytest.fixture(scope="module")
def seed_fault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    yield from stage2_run(tmp_path_factory.mktemp("seed"), "seed-no-sidecar")


@pytest.fixture(scope="module")
def milvus_down(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    yield from stage2_run(tmp_path_factory.mktemp("milvus"), "milvus-down")


def test_the_healthy_sandbox_is_green(healthy: Run) -> None:
    assert healthy.scenarios, healthy.output[-2000:]
    failed = {name: r.message for name, r in healthy.scenarios.items() if r.outcome != "passed"}
    assert failed == {}


def test_the_seed_incident_turns_the_mesh_scenario_red_with_the_broken_link(
    seed_fault: Run,
) -> None:
    result = seed_fault.result("Llama Stack runs with its mesh sidecar")
    assert result.outcome == "failed"
    for fragment in [
        "lack container istio-proxy",
        "has containers [llamastack]",
        "namespace is correctly labelled istio.io/rev=data-science-smcp and a mesh member",
        "created by the operator of LlamaStackDistribution llama-stack",
        "-> Deployment llama-stack -> LlamaStackDistribution llama-stack",
        'lacks the sidecar.istio.io/inject: "true" annotation',
        "evidence: owner chain",
    ]:
        assert fragment in result.message, result.message
    assert result.seconds < 30  # its budget is 2 minutes: a rolled-out workload will not change


def test_the_seed_incident_leaves_the_rest_of_the_mesh_green(seed_fault: Run) -> None:
    assert seed_fault.result("The mesh control plane is ready").outcome == "passed"
    assert (
        seed_fault.result(
            "The stage namespace is a member of the mesh, enrolled for injection"
        ).outcome
        == "passed"
    )


def test_milvus_down_turns_milvus_red_with_the_crash(milvus_down: Run) -> None:
    result = milvus_down.result("Milvus standalone is deployed and available")
    assert result.outcome == "failed"
    assert "Deployment private-ai-demo/milvus-standalone" in result.message
    assert "container milvus waiting: CrashLoopBackOff" in result.message
    assert "will not recover by waiting" in result.message
    assert result.seconds < 30


def test_the_seed_incident_says_why_the_model_is_not_usable(seed_fault: Run) -> None:
    result = seed_fault.result("Llama Stack is healthy and has the stage model registered")
    assert result.outcome == "failed"
    for fragment in [
        "expected model smollm2-135m registered and answering",
        "is listed, but a completion through it fails",
        "its inference provider vllm reports 'Error: failed to connect to vLLM'",
        "Llama Stack cannot reach the model server",
        "has no istio-proxy sidecar, so the mesh rejects its calls",
    ]:
        assert fragment in result.message, result.message
    assert seed_fault.result("A question is answered from ingested documents").outcome == "failed"
    assert seed_fault.result("Milvus stores and finds vectors").outcome == "passed"


def test_milvus_down_turns_the_vector_round_trip_red(milvus_down: Run) -> None:
    result = milvus_down.result("Milvus stores and finds vectors")
    assert result.outcome == "failed"
    assert "Milvus at http://127.0.0.1:" in result.message
    assert "does not answer" in result.message or "Milvus refused" in result.message, result.message
