"""Writes that lose nothing: a field another manager owns is not taken over (the conflict names
the manager and the field), an object that existed before the run is given back as it was,
and a Secret that existed with other values is not overwritten."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from stagecheck.kube.client import Kube
from stagecheck.sandbox.controlplane import ControlPlane
from tests.support import ROOT, Run, run_pytest

FEATURE = str(ROOT / "tests/features/provisioning/existing.feature")
NS = "/api/v1/namespaces/private-ai-demo"
SETTINGS = f"{NS}/configmaps/gitops-settings"
SECRETS = {  # name -> the value of AWS_ACCESS_KEY_ID (minio.env holds minio-canary-access)
    "existing-credentials": "another-environments-key",
    "existing-same-credentials": "minio-canary-access",
}


def kept(obj: dict[str, Any]) -> dict[str, Any]:
    """What a user of the object sees of it: its data, labels and annotations."""
    meta = obj["metadata"]
    return {
        "data": obj.get("data"),
        "labels": meta.get("labels"),
        "annotations": meta.get("annotations"),
        "uid": meta["uid"],
    }


@pytest.fixture(scope="module")
def before(world: Kube) -> Iterator[dict[str, dict[str, Any]]]:
    """The objects as GitOps made them, before the run; removed when the module is done."""
    world.apply(
        SETTINGS,
        {"apiVersion": "v1", "kind": "ConfigMap", "data": {"mode": "fast"},
         "metadata": {"name": "gitops-settings", "namespace": "private-ai-demo",
                      "annotations": {"argocd.argoproj.io/tracking-id": "stage2"}}},
        field_manager="argocd-controller",
    )  # fmt: skip
    for name, key in SECRETS.items():
        world.apply(
            f"{NS}/secrets/{name}",
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
             "data": {"AWS_ACCESS_KEY_ID": base64.b64encode(key.encode()).decode()}},
            field_manager="argocd-controller",
        )  # fmt: skip
    paths = [SETTINGS, *(f"{NS}/secrets/{n}" for n in SECRETS)]
    yield {path: world.get(path) for path in paths}
    for path in paths:
        world.delete(path)


@pytest.fixture(scope="module")
def existing_run(
    before: dict[str, dict[str, Any]],
    control_plane: ControlPlane,
    tmp_path_factory: pytest.TempPathFactory,
) -> Run:
    target = ["--target", "sandbox", "--kubeconfig", str(control_plane.kubeconfig)]
    return run_pytest([*target, FEATURE], tmp_path_factory.mktemp("existing"))


def test_a_field_another_manager_owns_is_not_taken_over(existing_run: Run, world: Kube) -> None:
    result = existing_run.result("A field another manager owns is not taken over")
    assert result.outcome == "failed"
    assert "ConfigMap private-ai-demo/gitops-settings" in result.message
    assert "another manager owns fields this set would change" in result.message
    assert '.data.mode: conflict with "argocd-controller"' in result.message
    assert world.get(SETTINGS)["data"] == {"mode": "fast"}


def test_an_object_that_existed_is_given_back_as_it_was(
    existing_run: Run, before: dict[str, dict[str, Any]], world: Kube
) -> None:
    result = existing_run.result("An object that existed is given back as it was")
    assert result.outcome == "passed", result.message  # the run's own key was there
    assert kept(world.get(SETTINGS)) == kept(before[SETTINGS])


def test_a_secret_that_existed_is_used_or_refused_never_overwritten(
    existing_run: Run, before: dict[str, dict[str, Any]], world: Kube
) -> None:
    refused = existing_run.result("A Secret that existed with other values is not overwritten")
    assert refused.outcome == "failed"
    assert "existed before the run with other values for AWS_ACCESS_KEY_ID" in refused.message
    assert "another-environments-key" not in refused.message
    same = existing_run.result("A Secret that existed with the same values is used as it is")
    assert same.outcome == "passed", same.message
    for name in SECRETS:
        path = f"{NS}/secrets/{name}"
        assert kept(world.get(path)) == kept(before[path])
        assert (
            world.get(path)["metadata"]["resourceVersion"]
            == (before[path]["metadata"]["resourceVersion"])
        )


def test_the_run_owns_no_field_afterwards(existing_run: Run, world: Kube) -> None:
    managers = {m["manager"] for m in world.get(SETTINGS)["metadata"]["managedFields"]}
    assert managers == {"argocd-controller"}
