"""The missing-sidecar diagnosis under Service Mesh 2.x rules, against objects shaped as
maistra/istio-operator (maistra-2.5) and maistra/istio (maistra-2.6) make them: the webhook
selects namespaces by ``maistra.io/member-of`` (helm/v2.5/.../mutatingwebhook.yaml), not by
``istio.io/rev``; with ``autoInject`` unset (false, smcp-templates/v2.5/base) only pods whose
``sidecar.istio.io/inject`` label (first) or annotation says y/yes/true/on are injected
(pkg/kube/inject/inject.go injectRequired)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stagecheck.engine import mesh
from stagecheck.kube.client import Kube
from stagecheck.kube.discovery import Discovery
from tests.engine.mesh_support import (
    apply,
    control_plane,
    deployment,
    llama_stack,
    member,
    namespace,
    pod_of,
    remove,
)

MESH = "mesh2-cp"  # the mesh's namespace (istio-system on the stage)
AUTO = "mesh2-cp-auto"  # a mesh whose control plane injects every pod
MEMBER = "mesh2-member"  # labelled by the member controller
UNLABELLED = "mesh2-unlabelled"  # a member the controller has not labelled (labelled rev only)
OUTSIDER = "mesh2-outsider"  # not a member
IGNORED = "mesh2-ignored"
AUTO_MEMBER = "mesh2-auto-member"


@pytest.fixture(scope="module")
def cluster(stage_kinds: Kube) -> Iterator[Kube]:
    apply(stage_kinds, [
        namespace(MESH), namespace(AUTO),
        control_plane(MESH), control_plane(AUTO, auto_inject=True),
        namespace(MEMBER, {mesh.MEMBER_OF: MESH}), member(MEMBER, MESH),
        namespace(UNLABELLED, {"istio.io/rev": "basic"}), member(UNLABELLED, MESH),
        namespace(OUTSIDER, {mesh.MEMBER_OF: MESH}),
        namespace(IGNORED, {mesh.MEMBER_OF: MESH, mesh.IGNORE_NAMESPACE: "true"}),
        member(IGNORED, MESH),
        namespace(AUTO_MEMBER, {mesh.MEMBER_OF: AUTO}), member(AUTO_MEMBER, AUTO),
        *llama_stack(MEMBER),
        deployment(MEMBER, "labelled", {mesh.INJECT: "true"}, {}),
        deployment(MEMBER, "label-wins", {mesh.INJECT: "false"}, {mesh.INJECT: "true"}),
        deployment(MEMBER, "yes", {}, {mesh.INJECT: "yes"}),
        deployment(MEMBER, "host-network", {}, {mesh.INJECT: "true"}, host_network=True),
        deployment(MEMBER, "team", {}, {}),
        *[deployment(ns, "app", {}, {}) for ns in (UNLABELLED, OUTSIDER, IGNORED, AUTO_MEMBER)],
    ])  # fmt: skip
    yield stage_kinds
    # Other tests judge by Service Mesh 3.x rules where no control plane of 2.x exists.
    remove(stage_kinds, [
        f"/apis/maistra.io/v2/namespaces/{ns}/servicemeshcontrolplanes/basic" for ns in (MESH, AUTO)
    ])  # fmt: skip


def diagnose(kube: Kube, ns: str, app: str) -> mesh.Diagnosis:
    return mesh.explain_missing_sidecar(kube, Discovery(kube), pod_of(kube, ns, app))


def test_an_operator_pod_without_the_inject_flag_names_the_template_and_auto_inject(
    cluster: Kube,
) -> None:
    cause = diagnose(cluster, MEMBER, "llama-stack").cause
    assert cause.startswith(mesh.RULES_2)
    assert f"labelled {mesh.MEMBER_OF}={MESH}" in cause
    assert "created by the operator of LlamaStackDistribution llama-stack" in cause
    assert f'lacks {mesh.INJECT}: "true"' in cause
    assert (
        f"ServiceMeshControlPlane {MESH}/basic has spec.proxy.injection.autoInject=false" in cause
    )
    assert "set autoInject: true on the control plane" in cause


def test_a_team_workload_without_the_flag_names_its_deployment(cluster: Kube) -> None:
    cause = diagnose(cluster, MEMBER, "team").cause
    assert "the pod template of Deployment team lacks" in cause
    assert "autoInject=false (unset; the default)" in cause


def test_the_label_form_of_the_inject_flag_asks_for_injection(cluster: Kube) -> None:
    cause = diagnose(cluster, MEMBER, "labelled").cause
    assert f'the pod asks for injection (label {mesh.INJECT}: "true")' in cause
    assert f"injector webhook istiod-basic-{MESH}" in cause


def test_the_label_wins_over_the_annotation(cluster: Kube) -> None:
    cause = diagnose(cluster, MEMBER, "label-wins").cause
    assert f'sets label {mesh.INJECT}: "false", which does not ask for injection' in cause


def test_yes_asks_for_injection(cluster: Kube) -> None:
    assert "the pod asks for injection" in diagnose(cluster, MEMBER, "yes").cause


def test_a_host_network_pod_is_never_injected(cluster: Kube) -> None:
    assert "hostNetwork, which is never injected" in diagnose(cluster, MEMBER, "host-network").cause


def test_a_member_without_member_of_is_the_cause_whatever_its_revision_label(cluster: Kube) -> None:
    cause = diagnose(cluster, UNLABELLED, "app").cause
    assert f"has no {mesh.MEMBER_OF} label" in cause
    assert f"selects namespaces by {mesh.MEMBER_OF}={MESH}" in cause
    assert "istio.io/rev label selects nothing under 2.x" in cause


def test_a_namespace_no_member_resource_names_is_not_a_member(cluster: Kube) -> None:
    cause = diagnose(cluster, OUTSIDER, "app").cause
    assert "is not a member of the mesh: no ServiceMeshMember in it" in cause


def test_an_ignored_namespace_is_skipped(cluster: Kube) -> None:
    assert f"labelled {mesh.IGNORE_NAMESPACE}=true" in diagnose(cluster, IGNORED, "app").cause


def test_with_auto_inject_a_pod_without_the_flag_should_have_been_injected(cluster: Kube) -> None:
    cause = diagnose(cluster, AUTO_MEMBER, "app").cause
    assert "injects every pod (spec.proxy.injection.autoInject=true)" in cause
