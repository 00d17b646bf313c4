"""Fixtures for the framework's own tests: a private, real control plane with a known world."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stagecheck.kube.client import Kube
from stagecheck.sandbox.controlplane import ControlPlane
from stagecheck.sandbox.world import apply_documents, load_documents
from tests.support import ROOT, client_of, own_plane

# Vocabulary features are run by the tests in a sub-process (as users run them), never
# collected as tests of this suite.
collect_ignore = ["features"]

WORLD = ROOT / "tests" / "features" / "kubernetes" / "world.yaml"


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with own_plane(tmp_path_factory, "tests") as plane:
        yield plane


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Iterator[Kube]:
    with client_of(control_plane) as client:
        yield client


@pytest.fixture(scope="session")
def world(kube: Kube) -> Kube:
    """The control plane holding the objects of tests/features/kubernetes/world.yaml."""
    apply_documents(kube, load_documents(WORLD))
    return kube


@pytest.fixture
def sandbox_args(control_plane: ControlPlane) -> list[str]:
    """Arguments that point a feature run at the private control plane."""
    return ["--target", "sandbox", "--kubeconfig", str(control_plane.kubeconfig)]
