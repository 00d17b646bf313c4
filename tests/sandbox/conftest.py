"""The sandbox's tests get a control plane of their own: they install the stage's CRDs and run
stand-in controllers, which the vocabulary tests' world must never see (one of them proves a
kind is reported as not served)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stagecheck.kube.client import Kube
from stagecheck.sandbox.controlplane import ControlPlane
from tests.support import client_of, own_plane


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with own_plane(tmp_path_factory, "sb") as plane:
        yield plane


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Iterator[Kube]:
    with client_of(control_plane) as client:
        yield client
