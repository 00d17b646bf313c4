"""Fixtures for the engine's tests against the real control plane."""

from __future__ import annotations

import pytest

from stagecheck.kube.client import Kube
from stagecheck.sandbox.world import apply_documents, load_documents
from tests.engine.mesh_support import await_listable
from tests.support import ROOT

STAGE_CRDS = ROOT / "stagecheck" / "sandbox" / "worlds" / "stage2" / "01-crds.yaml"


@pytest.fixture(scope="session")
def stage_kinds(kube: Kube) -> Kube:
    """The control plane serving the stage's custom kinds (LlamaStackDistribution,
    DoclingServe, the Maistra kinds, Route...), as the sandbox installs them; each listable
    (a CRD's storage answers 429 for a moment after it is first served)."""
    crds = load_documents(STAGE_CRDS)
    apply_documents(kube, crds)
    for crd in crds:
        await_listable(kube, crd)
    return kube
