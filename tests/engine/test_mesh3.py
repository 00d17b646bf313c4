"""The missing-sidecar diagnosis under Service Mesh 3.x rules (the Sail operator,
sailoperator.io Istio): namespaces are selected by ``istio-injection=enabled`` or
``istio.io/rev``, and their pods are injected unless they opt out; ``maistra.io/member-of``
means nothing there."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stagecheck.engine import mesh
from stagecheck.kube.client import Kube
from stagecheck.kube.discovery import Discovery
from tests.engine.mesh_support import (
    PA_CRD,
    apply,
    await_listable,
    deployment,
    model_service,
    namespace,
    open_crd,
    peer_authentication,
    pod_of,
    remove,
)

ENABLED = "mesh3-enabled"
REVISION = "mesh3-revision"
OLD_LABEL = "mesh3-old-label"
CRD = open_crd("sailoperator.io", "Istio", "istios", scope="Cluster")
ISTIO = {"apiVersion": "sailoperator.io/v1", "kind": "Istio", "metadata": {"name": "default"},
         "spec": {"namespace": "istio-system", "version": "v1.24.3"}}  # fmt: skip


@pytest.fixture(scope="module")
def cluster(stage_kinds: Kube) -> Iterator[Kube]:
    apply(stage_kinds, [CRD, PA_CRD])
    await_listable(stage_kinds, CRD)
    await_listable(stage_kinds, PA_CRD)
    apply(stage_kinds, [
        ISTIO,
        namespace(ENABLED, {"istio-injection": "enabled"}),
        namespace(REVISION, {"istio.io/rev": "canary"}),
        namespace(OLD_LABEL, {mesh.MEMBER_OF: "istio-system"}),
        deployment(ENABLED, "app", {}, {}),
        deployment(ENABLED, "opted-out", {}, {mesh.INJECT: "false"}),
        deployment(REVISION, "app", {}, {}),
        deployment(OLD_LABEL, "app", {}, {}),
        *model_service(ENABLED), *model_service(OLD_LABEL),
        namespace("istio-system"), peer_authentication("istio-system", "STRICT"),
    ])  # fmt: skip
    for ns in (ENABLED, OLD_LABEL):
        pod_of(stage_kinds, ns, "model")
    yield stage_kinds
    remove(stage_kinds, [
        "/apis/sailoperator.io/v1/istios/default",
        "/apis/security.istio.io/v1/namespaces/istio-system/peerauthentications/default",
    ])  # fmt: skip


def diagnose(kube: Kube, ns: str, app: str) -> str:
    return mesh.explain_missing_sidecar(kube, Discovery(kube), pod_of(kube, ns, app)).cause


def test_a_pod_in_an_enabled_namespace_should_have_been_injected(cluster: Kube) -> None:
    cause = diagnose(cluster, ENABLED, "app")
    assert cause.startswith(mesh.RULES_3)
    assert "labelled istio-injection=enabled and its pods are injected unless they opt out" in cause


def test_a_pod_that_opts_out_is_named(cluster: Kube) -> None:
    cause = diagnose(cluster, ENABLED, "opted-out")
    assert f'opts out with annotation {mesh.INJECT}: "false"' in cause


def test_a_revision_no_control_plane_has_is_named(cluster: Kube) -> None:
    assert "no control plane revision is named canary (revisions: default)" in diagnose(
        cluster, REVISION, "app"
    )


def test_member_of_selects_nothing_under_3(cluster: Kube) -> None:
    cause = diagnose(cluster, OLD_LABEL, "app")
    assert "has neither istio-injection=enabled nor istio.io/rev" in cause
    assert f"{mesh.MEMBER_OF} label selects nothing under 3.x" in cause


def refusal(kube: Kube, ns: str) -> mesh.Refusal | None:
    service = kube.get(f"/api/v1/namespaces/{ns}/services/model-predictor")
    return mesh.plaintext_refused(kube, Discovery(kube), service)


def test_a_strict_policy_in_the_root_namespace_refuses_plaintext_to_an_enabled_namespace(
    cluster: Kube,
) -> None:
    found = refusal(cluster, ENABLED)
    assert found is not None and found.refused and found.rules == mesh.RULES_3
    assert found.said == (
        f"Service {ENABLED}/model-predictor is in the mesh (namespace {ENABLED} labelled "
        "istio-injection=enabled; its pods carry istio-proxy) and requires mTLS "
        "(PeerAuthentication istio-system/default mtls.mode STRICT)"
    )


def test_member_of_does_not_put_a_service_in_the_3x_mesh(cluster: Kube) -> None:
    found = refusal(cluster, OLD_LABEL)
    assert found is not None and not found.refused
    assert f"is outside the mesh: namespace {OLD_LABEL} has neither" in found.said
