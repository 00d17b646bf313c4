"""Fixtures for the engine's tests against the real control plane."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stagecheck.kube.client import Kube
from stagecheck.sandbox.world import apply_documents, load_documents
from tests.engine.mesh_support import await_listable
from tests.support import ROOT, client_of, own_plane

STAGE_CRDS = ROOT / "stagecheck" / "sandbox" / "worlds" / "stage2" / "01-crds.yaml"


@pytest.fixture(scope="package")
def stage_kinds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    """A control plane of the engine tests' own serving the stage's custom kinds
    (LlamaStackDistribution, OGXServer, DoclingServe, the Maistra kinds, Route...) as the sandbox
    installs them, each listable (a CRD's storage answers 429 for a moment after it is first
    served). Not the shared plane: the vocabulary tests prove on that one that a kind such as
    LlamaStackDistribution is reported as not served."""
    with own_plane(tmp_path_factory, "engine") as plane, client_of(plane) as kube:
        crds = load_documents(STAGE_CRDS)
        apply_documents(kube, crds)
        for crd in crds:
            await_listable(kube, crd)
        yield kube
