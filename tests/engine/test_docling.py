"""The Docling checks against DoclingServe objects shaped as the docling-operator writes them
(docling-project/docling-operator internal/reconcilers/status.go): no ``Ready`` and no phase,
``DeploymentAvailable`` a copy of Deployment ``<name>-deployment``'s ``Available``."""

from __future__ import annotations

from typing import Any

import pytest

from stagecheck.engine import readiness
from stagecheck.engine.kubernetes import Cluster
from stagecheck.engine.outcome import StepFailure
from stagecheck.kube.client import Kube
from stagecheck.sandbox.world import apply_documents

NAMESPACE = "docling-checks"
T = "2026-11-03T08:10:00Z"


def condition(type_: str, status: str, reason: str, message: str = "") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": T}  # fmt: skip


def doclingserve(name: str, conditions: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "apiVersion": "docling.github.io/v1alpha1",
        "kind": "DoclingServe",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "apiServer": {"image": "quay.io/docling-project/docling-serve:latest", "instances": 1},
            "engine": {"local": {"numWorkers": 2}},
            "route": {"enabled": True},
        },
        "status": {"observedGeneration": 1, "conditions": conditions},
    }


CREATED = condition("DeploymentCreated", "True", "DeploymentCreated",
                    "The docling deployment was created successfully")  # fmt: skip


@pytest.fixture(scope="module")
def cluster(stage_kinds: Kube) -> Cluster:
    apply_documents(
        stage_kinds,
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            doclingserve("available", [
                CREATED,
                condition("DeploymentAvailable", "True", "MinimumReplicasAvailable",
                          "Deployment has minimum availability."),
                condition("Progressing", "True", "NewReplicaSetAvailable", "progressed"),
                condition("ServiceCreated", "True", "ServiceCreated", "created"),
                condition("RouteCreated", "True", "RouteCreated", "created"),
            ]),
            doclingserve("unavailable", [
                CREATED,
                condition("DeploymentAvailable", "False", "MinimumReplicasUnavailable",
                          "Deployment does not have minimum availability."),
            ]),
            doclingserve("unreadable", [
                condition("DeploymentCreated", "Unknown", "DeploymentStatusError",
                          'deployments.apps "unreadable-deployment" not found'),
            ]),
            # The shape the sandbox used to write by hand: a Ready the operator never writes.
            doclingserve("hand-written", [condition("Ready", "True", "DeploymentReady")]),
        ],
    )  # fmt: skip
    return Cluster(stage_kinds, NAMESPACE)


def test_a_doclingserve_whose_deployment_is_available_is_ready(cluster: Cluster) -> None:
    cluster.expect_docling_ready("available", None)


def test_an_unavailable_deployment_is_named_with_its_reason(cluster: Cluster) -> None:
    with pytest.raises(StepFailure) as caught:
        cluster.expect_docling_ready("unavailable", None)
    message = str(caught.value)
    assert "DeploymentAvailable=True" in message
    assert "docling-operator's rule" in message  # the rule it applied
    assert "Deployment unavailable-deployment is not available" in message
    assert "Deployment does not have minimum availability." in message


def test_a_deployment_the_operator_cannot_read_is_the_cause(cluster: Cluster) -> None:
    with pytest.raises(StepFailure) as caught:
        cluster.expect_docling_ready("unreadable", None)
    assert "cannot read its Deployment unreadable-deployment" in str(caught.value)
    assert "DeploymentStatusError" in str(caught.value)


def test_a_ready_condition_alone_is_not_what_the_operator_writes(cluster: Cluster) -> None:
    with pytest.raises(StepFailure) as caught:
        cluster.expect_docling_ready("hand-written", None)
    assert "no condition DeploymentAvailable" in str(caught.value)


def test_ready_judges_a_doclingserve_by_its_deployment(cluster: Cluster) -> None:
    """A DoclingServe has no Ready and no phase: merely existing is not ready."""
    resource = cluster.ref("DoclingServe.docling.github.io", "x").resource
    found = {
        o["metadata"]["name"]: o
        for o in cluster.kube.get(resource.collection_path(NAMESPACE))["items"]
    }
    rule = readiness.rule_for(resource)
    assert rule.says == "condition DeploymentAvailable=True"
    assert readiness.judge(rule, found["available"]).ok
    assert not readiness.judge(rule, found["unavailable"]).ok
    assert not readiness.judge(rule, found["hand-written"]).ok
