"""The stage-2 world holds only what GitOps would apply: every status a check reads comes from
a stand-in controller, the webhook, kwok or the control plane, never from the world files."""

from __future__ import annotations

from stagecheck.sandbox.world import load_documents
from tests.support import ROOT

WORLD = ROOT / "stagecheck" / "sandbox" / "worlds" / "stage2"
BUILT_IN = {
    "v1",
    "apps/v1",
    "batch/v1",
    "rbac.authorization.k8s.io/v1",
    "storage.k8s.io/v1",
    "apiextensions.k8s.io/v1",
    "admissionregistration.k8s.io/v1",
}


def test_no_custom_resource_of_the_world_has_a_hand_written_status() -> None:
    documents = load_documents(WORLD)
    custom = [d for d in documents if d["apiVersion"] not in BUILT_IN]
    assert custom, "the world has custom resources"
    written = [f"{d['kind']}/{d['metadata']['name']}" for d in custom if "status" in d]
    assert written == []


def test_no_object_of_the_world_has_a_hand_written_status() -> None:
    written = [
        f"{d['kind']}/{d['metadata']['name']}" for d in load_documents(WORLD) if "status" in d
    ]
    assert written == []
