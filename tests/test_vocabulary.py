"""The Kubernetes step vocabulary against a real control plane: every step has a scenario that
passes on a matching object and one that fails with the message a user needs."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from stagecheck.kube.client import Kube
from stagecheck.sandbox.controlplane import ControlPlane
from tests.support import ROOT, Run, run_pytest

FEATURES = ROOT / "tests" / "features" / "kubernetes"
PASS: list[str] = []

# Scenario -> fragments its failure message must contain (an empty list: it must pass).
EXPECTED: dict[str, list[str]] = {
    # namespaces.feature
    "The stage namespace exists": PASS,
    "A namespace that does not exist": [
        "Namespace no-such-namespace: expected it exists",
        "not found",
    ],
    "The stage namespace is labelled for sidecar injection": PASS,
    "A label that names another revision": [
        "expected label istio.io/rev=basic",
        "label istio.io/rev='data-science-smcp'",
    ],
    "A label that is absent": [
        "no label maistra.io/member-of",
        "labels: istio.io/rev=data-science-smcp",
    ],
    # objects.feature
    "A custom resource named by its kind": PASS,
    "A custom resource named by kind and group": PASS,
    "A kind spelled the way kubectl spells it": PASS,
    "A kind the cluster does not serve": ["serves no kind 'Wigdet'", "closest served: Widget"],
    "A kind in the wrong API group": [
        "serves no kind 'Widget.stagecheck.example.org'",
        "Widget.stagecheck.example.com/v1",
        "API group",
    ],
    "An object that does not exist": ["ConfigMap private-ai-demo/no-such-config", "not found"],
    "An object in a namespace that does not exist": ["namespace no-such-namespace does not exist"],
    "An object in another namespace": PASS,
    "An object that never appears": ["not found", "waited:   2.0s"],
    "A duration the step cannot read": ["'30 parsecs' is not a duration"],
    # conditions.feature
    "A condition that holds": PASS,
    "A condition with another status shows its reason and message": [
        "expected condition Ready=True",
        "Ready=False (Reconciling: waiting for the API server)",
        "since:    2026-01-01T00:00:00Z",
    ],
    "A condition the object does not report": ["no condition Degraded", "Ready=True"],
    "A condition that failed stops the wait at once": [
        "APIServerReady=False (FailingToDeploy",
        "reason FailingToDeploy (will not recover by waiting)",
    ],
    "A phase that holds": PASS,
    "A failed phase stops the wait at once": ["phase Failed", "will not recover", "Ready=False"],
    # workloads.feature
    "A deployment becomes available": PASS,
    "A deployment with the expected replica counts": PASS,
    "A deployment with other replica counts": [
        "expected Available=True with 3/3 replicas ready",
        "2/2 replicas ready",
    ],
    "A deployment whose pods cannot be scheduled": [
        "Deployment private-ai-demo/unschedulable",
        "0/1 replicas ready",
        "not scheduled",
        "Unschedulable",
        "node(s) didn't match Pod's node affinity/selector",
    ],
    "All pods of a workload are ready": PASS,
    "No pod matches the selector": ["no pod matches labels 'app=nothing' in private-ai-demo"],
    "A pod that is not ready": [
        "0/1 pods Ready",
        "pod not-ready-0 is Running, Ready=False (ContainersNotReady",
    ],
    "A crash-looping pod stops the wait at once": [
        "container milvus waiting: CrashLoopBackOff",
        "CrashLoopBackOff (will not recover by waiting)",
    ],
    "Every pod has the injected sidecar": PASS,
    "A pod without the sidecar": ["lack container istio-proxy", "has containers [llamastack]"],
    # distributions.feature
    "An OGXServer is found where LlamaStackDistribution is not served": PASS,
    "An OGXServer still initializing": [
        "OGXServer private-ai-demo/ogx-starting: expected phase Ready",
        "phase Initializing",
    ],
    # evidence.feature (its attachments are checked in test_evidence.py)
    "A pod that never becomes ready carries its evidence": [
        "0/1 pods Ready",
        "pod docling-0 is Pending",
    ],
    "A secret's evidence shows no value": [
        "Secret private-ai-demo/minio-credentials",
        "no label app",
    ],
    # readiness.feature
    "A claim bound to its volume": PASS,
    "A claim no volume can satisfy": [
        "PersistentVolumeClaim private-ai-demo/minio-data: expected ready "
        "(PersistentVolumeClaim: phase Bound)",
        "phase Pending",
    ],
    "A route a router admitted": PASS,
    "A route no router admitted names the router and its reason": [
        "expected ready (Route: admitted by a router)",
        "router default: Admitted=False (HostAlreadyClaimed: route admitted-route already",
    ],
    "A custom resource is ready by its Ready condition": PASS,
    "A custom resource with no status yet is not ready": [
        "expected ready (Widget: its Ready condition True, else a phase of Ready,",
        "no status yet",
        "its controller (operator) has not reported on it",
    ],
    "A custom resource with neither a Ready condition nor a phase": [
        "Widget private-ai-demo/synced-widget reports neither a Ready condition nor a phase",
        "(its status has conditions Synced=True (Synced); fields observedGeneration)",
        "with 'has condition \"<type>\" with status \"True\"' or 'matches:'",
    ],
    "A ConfigMap is ready once it exists": PASS,
    "A sentence for another kind": [
        "ConfigMap private-ai-demo/canary-config: this sentence is for a PersistentVolumeClaim",
        "write 'the ConfigMap \"canary-config\" is ready'",
    ],
    "A Secret holds the keys the stage needs": PASS,
    "A Secret without a key names the keys it has, no value": [
        "expected keys AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY",
        "no key AWS_ACCESS_KEY_ID (keys: AWS_SECRET_ACCESS_KEY)",
    ],
    "An operator at a version or later": PASS,
    "An operator older than the stage needs": [
        "operator rhods-operator in private-ai-demo: expected installed, phase Succeeded, at "
        "version 2.16.1 or later",
        "rhods-operator.2.16.0 version 2.16.0, phase Succeeded",
        "2.16.0 is older than 2.16.1",
    ],
    "An operator still installing": [
        "servicemeshoperator.v2.5.1 version 2.5.1, phase Installing",
        "InstallWaiting: installing: waiting for deployment istio-operator",
    ],
    "The cluster's Kubernetes at a version or later": PASS,
    "A Kubernetes older than the stage needs": [
        "the cluster's Kubernetes: expected version v2.0 or later",
        "version v1.",
    ],
    "A Deployment with a capital D": PASS,
    # matching.feature
    "Only the written fields must match, conditions in any order": PASS,
    "A field with another value": ["spec.size: expected 5, found 3"],
    "A condition list without the expected item": [
        "status.conditions[0]",
        "no item of 2 matches",
        "'reason': 'Reconciling'",
    ],
    "A partial object that is not valid YAML": ["the partial object is not valid YAML"],
}
# Scenarios that must end well before their time budget: the state says waiting is useless.
FAIL_FAST = [
    "A condition that failed stops the wait at once",
    "A failed phase stops the wait at once",
    "A crash-looping pod stops the wait at once",
]


@pytest.fixture(scope="module")
def vocabulary_run(
    world: Kube, control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    args = ["--target", "sandbox", "--kubeconfig", str(control_plane.kubeconfig)]
    paths = [str(p) for p in sorted(FEATURES.glob("*.feature"))]
    return run_pytest(
        [*args, *paths, "-k", "not appears_while"], tmp_path_factory.mktemp("vocabulary")
    )


def test_every_scenario_is_expected(vocabulary_run: Run) -> None:
    from pytest_bdd.scenario import make_python_name

    ran = set(vocabulary_run.scenarios)
    assert ran == {make_python_name(name) for name in EXPECTED}, vocabulary_run.output[-3000:]


@pytest.mark.parametrize("scenario", list(EXPECTED))
def test_scenario_outcome_and_message(vocabulary_run: Run, scenario: str) -> None:
    result = vocabulary_run.result(scenario)
    fragments = EXPECTED[scenario]
    if not fragments:
        assert result.outcome == "passed", result.message
        return
    assert result.outcome == "failed", f"{scenario} should fail"
    for fragment in fragments:
        assert fragment in result.message, f"{fragment!r} not in:\n{result.message}"


@pytest.mark.parametrize("scenario", FAIL_FAST)
def test_terminal_states_end_the_wait_early(vocabulary_run: Run, scenario: str) -> None:
    assert vocabulary_run.result(scenario).seconds < 30  # its budget is 2 minutes


def test_failures_show_no_framework_traceback(vocabulary_run: Run) -> None:
    message = vocabulary_run.result("An object that does not exist").message
    assert "Traceback" not in message and "site-packages" not in message
    assert message.startswith('Then the ConfigMap "no-such-config" exists')


def test_a_waiting_step_reacts_as_soon_as_the_object_appears(
    world: Kube, control_plane: ControlPlane, tmp_path: Path
) -> None:
    def create_once_watched() -> None:
        _await_audit(control_plane.audit_log, verb="watch", uri_part="late-config", timeout=60)
        world.create(
            "/api/v1/namespaces/private-ai-demo/configmaps",
            {"metadata": {"name": "late-config"}, "data": {"k": "v"}},
        )

    creator = threading.Thread(target=create_once_watched, daemon=True)
    creator.start()
    args = ["--target", "sandbox", "--kubeconfig", str(control_plane.kubeconfig)]
    run = run_pytest([*args, str(FEATURES / "objects.feature"), "-k", "appears_while"], tmp_path)
    creator.join(timeout=5)
    result = run.result("An object that appears while the step waits")
    assert result.outcome == "passed", run.output[-2000:]
    assert result.seconds < 20  # its budget is 60 s: it returned on the event, not the timeout


def _await_audit(log: Path, verb: str, uri_part: str, timeout: float) -> None:
    """Block until the API server's audit log shows a request with this verb and URI part."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = log.read_text().splitlines() if log.exists() else []
        for event in map(json.loads, lines):
            if event.get("verb") == verb and uri_part in event.get("requestURI", ""):
                return
        time.sleep(0.1)
    raise AssertionError(f"no {verb} of {uri_part} reached the API server in {timeout}s")
