"""Provisioning steps against a real control plane: applied, ready, undone; refused on
read-only targets before any write (proven by the API server's audit log); cleaned up on
interruption; broken manifest sets apply nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stagecheck.kube.client import Kube
from stagecheck.sandbox.controlplane import ControlPlane
from tests.support import (
    ROOT,
    WRITE_VERBS,
    Run,
    audit_events,
    run_id,
    run_pytest,
    two_context_kubeconfig,
)

FEATURE = str(ROOT / "tests/features/provisioning/provisioning.feature")
KINDS = ["configmaps", "secrets", "services", "deployments"]


def labelled(kube: Kube, run: str) -> list[str]:
    found = []
    for plural in KINDS:
        path = (
            f"/api/v1/namespaces/private-ai-demo/{plural}"
            if plural != "deployments"
            else "/apis/apps/v1/namespaces/private-ai-demo/deployments"
        )
        items = kube.get(path, {"labelSelector": f"stagecheck.io/run={run}"})["items"]
        found += [f"{plural}/{i['metadata']['name']}" for i in items]
    crds = kube.get(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        {"labelSelector": f"stagecheck.io/run={run}"},
    )
    return found + [f"crd/{i['metadata']['name']}" for i in crds["items"]]


def kustomization_run(target: list[str], tmp: Path, *options: str) -> Run:
    """Only the kustomization scenario, against the given target, with extra run options."""
    return run_pytest([*target, *options, FEATURE, "-k", "kustomization"], tmp)


def cluster_target(plane: ControlPlane, tmp: Path) -> list[str]:
    """The private control plane named as a live cluster: a context of a user kubeconfig."""
    kubeconfig, context = two_context_kubeconfig(plane, tmp / "kubeconfig")
    return ["--target", f"cluster:{context}", "--kubeconfig", str(kubeconfig)]


def sandbox_target(plane: ControlPlane) -> list[str]:
    return ["--target", "sandbox", "--kubeconfig", str(plane.kubeconfig)]


@pytest.fixture(scope="module")
def sandbox_run(
    world: Kube, control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    return run_pytest(
        [*sandbox_target(control_plane), FEATURE], tmp_path_factory.mktemp("provisioning")
    )


def test_a_kustomization_is_applied_and_ready(sandbox_run: Run) -> None:
    result = sandbox_run.result(
        "A kustomization is applied, becomes ready, and is removed afterwards"
    )
    assert result.outcome == "passed", result.message


def test_everything_the_run_created_is_gone_afterwards(sandbox_run: Run, world: Kube) -> None:
    run = run_id(sandbox_run.output)
    assert labelled(world, run) == []
    assert (
        world.get_or_none(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gizmos.provisioning.example.com"
        )
        is None
    )


def test_a_label_set_by_a_scenario_is_restored(sandbox_run: Run, world: Kube) -> None:
    assert (
        sandbox_run.result("The stage namespace is labelled for the length of the scenario").outcome
        == "passed"
    )
    labels = world.get("/api/v1/namespaces/private-ai-demo")["metadata"]["labels"]
    assert labels["istio.io/rev"] == "data-science-smcp"


@pytest.mark.parametrize(
    ("scenario", "fragments", "must_not_exist"),
    [
        (
            "A manifest that is not valid YAML applies nothing",
            ["broken-yaml/b-broken.yaml:6: not valid YAML"],
            "must-not-exist-a",
        ),
        (
            "A manifest of a kind the cluster does not serve applies nothing",
            [  # every kind the cluster lacks, at once, each with its objects
                "2 kind(s) of this set are not served by the cluster",
                "LlamaStackDistribution private-ai-demo/llama-stack (",
                "unknown-kind/objects.yaml document 2",
                "LlamaStackDistribution private-ai-demo/llama-stack-2 (",
                "Gadget private-ai-demo/gadget (",
                "serves no kind 'LlamaStackDistribution",
                "serves no kind 'Gadget",
            ],
            "must-not-exist-b",
        ),
        (
            "A manifest the API rejects applies nothing",
            [
                "Deployment private-ai-demo/bad-replicas",
                "rejected/objects.yaml document 2",
                "nothing of this set was applied",
                "spec.replicas: Invalid value: -3",
            ],
            "must-not-exist-c",
        ),
    ],
)
def test_a_broken_manifest_set_names_file_and_object_and_applies_nothing(
    sandbox_run: Run, world: Kube, scenario: str, fragments: list[str], must_not_exist: str
) -> None:
    result = sandbox_run.result(scenario)
    assert result.outcome == "failed"
    for fragment in fragments:
        assert fragment in result.message, result.message
    assert (
        world.get_or_none(f"/api/v1/namespaces/private-ai-demo/configmaps/{must_not_exist}") is None
    )


def test_a_missing_credential_is_named_without_values(sandbox_run: Run) -> None:
    result = sandbox_run.result("A missing credential is named and no value is shown")
    assert (
        "missing credential for secret s3-credentials: NOT_SET_ANYWHERE not set" in result.message
    )
    assert "canary" not in sandbox_run.output


def test_a_read_only_target_refuses_before_any_write(
    control_plane: ControlPlane, world: Kube, tmp_path: Path
) -> None:
    run = kustomization_run(cluster_target(control_plane, tmp_path), tmp_path)
    result = run.result("A kustomization is applied, becomes ready, and is removed afterwards")
    assert result.outcome == "failed"
    assert "refused to create secret dspa-minio-credentials" in result.message
    assert (
        "is read-only in this run, and nothing was sent; rerun with --allow-writes"
        in result.message
    )
    events = audit_events(control_plane, run_id(run.output))
    assert events, "the run's requests are in the audit log"
    assert [e for e in events if e["verb"] in WRITE_VERBS] == []


def test_the_same_feature_passes_on_that_target_when_writes_are_allowed(
    control_plane: ControlPlane, world: Kube, tmp_path: Path
) -> None:
    target = cluster_target(control_plane, tmp_path)
    run = kustomization_run(target, tmp_path, "--allow-writes")
    assert (
        run.result("A kustomization is applied, becomes ready, and is removed afterwards").outcome
        == "passed"
    ), run.output[-3000:]
    events = audit_events(control_plane, run_id(run.output))
    assert {e["verb"] for e in events} >= {"patch", "delete"}
    assert labelled(world, run_id(run.output)) == []


def test_plan_mode_lists_the_changes_and_writes_nothing(
    control_plane: ControlPlane, world: Kube, tmp_path: Path
) -> None:
    run = kustomization_run(sandbox_target(control_plane), tmp_path, "--plan", "-rs")
    assert (
        run.result("A kustomization is applied, becomes ready, and is removed afterwards").outcome
        == "skipped"
    )
    assert (
        "plan only, nothing written; would create Secret private-ai-demo/dspa-minio-credentials"
        in run.output
    )
    events = audit_events(control_plane, run_id(run.output))
    assert [e for e in events if e["verb"] in WRITE_VERBS] == []
    assert run.returncode == 0  # a skipped scenario is no failure, unless asked


def test_fail_on_skipped_makes_a_skipped_scenario_fail_the_run(
    control_plane: ControlPlane, world: Kube, tmp_path: Path
) -> None:
    run = kustomization_run(sandbox_target(control_plane), tmp_path, "--plan", "--fail-on-skipped")
    assert run.returncode == 1, run.output[-2000:]
    assert "1 scenario(s) skipped, and --fail-on-skipped makes that a failure of the run" in (
        run.output
    )


def test_cleanup_never_keeps_what_the_scenario_created(
    control_plane: ControlPlane, world: Kube, tmp_path: Path
) -> None:
    run = kustomization_run(sandbox_target(control_plane), tmp_path, "--cleanup", "never")
    run_label = run_id(run.output)
    kept = labelled(world, run_label)
    assert "deployments/rag-api" in kept and "secrets/dspa-minio-credentials" in kept
    for item in ["configmaps/rag-settings", "secrets/dspa-minio-credentials", "services/rag-api"]:
        world.delete(f"/api/v1/namespaces/private-ai-demo/{item}")
    world.delete("/apis/apps/v1/namespaces/private-ai-demo/deployments/rag-api")
    world.delete(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gizmos.provisioning.example.com"
    )


def test_an_interrupted_run_still_cleans_up(
    control_plane: ControlPlane, world: Kube, tmp_path: Path
) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--target",
            "sandbox",
            "--kubeconfig",
            str(control_plane.kubeconfig),
            str(ROOT / "tests/features/provisioning/interrupted.feature"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ.copy(),
    )
    path = "/apis/apps/v1/namespaces/private-ai-demo/deployments/waits-for-gpu"
    deadline = time.monotonic() + 60
    while world.get_or_none(path) is None:
        assert time.monotonic() < deadline and process.poll() is None, (
            "the scenario never applied its manifests"
        )
        time.sleep(0.2)
    time.sleep(1)  # well inside the 5-minute wait of its Then step
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert "KeyboardInterrupt" in output
    assert world.get_or_none(path) is None, output[-2000:]
    assert (
        world.get_or_none("/api/v1/namespaces/private-ai-demo/configmaps/interrupted-settings")
        is None
    )
