"""What a check costs in requests, counted on the real control plane: a passing check asks only
what decides it. No timing: the requests say it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from stagecheck.engine.kubernetes import Cluster
from stagecheck.engine.outcome import StepFailure
from stagecheck.kube.client import Kube

NAMESPACE = "private-ai-demo"


def counted(kube: Kube, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The path of each GET (list, read) the client sends from now on."""
    asked: list[str] = []
    get: Callable[..., Any] = kube.get

    def counting(path: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(path)
        return get(path, *args, **kwargs)

    monkeypatch.setattr(kube, "get", counting)
    return asked


def test_an_available_deployment_is_decided_by_one_read(
    world: Kube, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = Cluster(world, NAMESPACE)
    cluster.expect_deployment_available("web", None, 2, 2, within=60)  # rolled out, discovery read
    asked = counted(world, monkeypatch)
    cluster.expect_deployment_available("web", None, 2, 2, within=60)
    # Its pods explain a failure; they never make a pass.
    assert asked == [f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"], asked


def test_a_deployment_that_is_not_available_is_explained_by_its_pods(
    world: Kube, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = Cluster(world, NAMESPACE)
    cluster.discovery.resolve("Deployment.apps")
    asked = counted(world, monkeypatch)
    with pytest.raises(StepFailure) as failure:
        cluster.expect_deployment_available("unschedulable", None, None, None, within=None)
    assert "not scheduled" in str(failure.value), failure.value
    assert f"/api/v1/namespaces/{NAMESPACE}/pods" in asked, asked
    assert len(asked) < 20, asked  # evidence included: bounded, whatever the namespace holds
