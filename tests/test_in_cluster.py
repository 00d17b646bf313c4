"""The in-cluster target, run as a pod's process would be: its service account's files, the
API server's address in the environment the kubelet sets, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from stagecheck.kube.client import Kube
from stagecheck.sandbox.controlplane import ControlPlane
from stagecheck.sandbox.world import apply_documents
from tests.support import (
    ROOT,
    WRITE_VERBS,
    audit_events,
    pod_environment,
    run_id,
    run_pytest,
    usernames,
)

FEATURE = str(ROOT / "tests" / "features" / "kubernetes" / "namespaces.feature")
NAMESPACE = "private-ai-demo"  # the world's stage namespace: the pod runs in it


@pytest.fixture(scope="module")
def accounts(world: Kube) -> Kube:
    """``namespace-reader`` may read namespaces; ``no-role`` may read nothing."""
    apply_documents(
        world,
        [
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": "namespace-reader", "namespace": NAMESPACE}},
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": "no-role", "namespace": NAMESPACE}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": {"name": "stagecheck-test-namespace-reader"},
             "rules": [{"apiGroups": [""], "resources": ["namespaces"],
                        "verbs": ["get", "list", "watch"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
             "metadata": {"name": "stagecheck-test-namespace-reader"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                         "name": "stagecheck-test-namespace-reader"},
             "subjects": [{"kind": "ServiceAccount", "name": "namespace-reader",
                           "namespace": NAMESPACE}]},
        ],
    )  # fmt: skip
    return world


def test_the_stage_is_checked_as_the_pods_service_account(
    control_plane: ControlPlane, accounts: Kube, tmp_path: Path
) -> None:
    env = pod_environment(control_plane, accounts, NAMESPACE, "namespace-reader", tmp_path / "sa")
    run = run_pytest([FEATURE, "--target", "in-cluster"], tmp_path, env)
    assert "stagecheck: target 'in-cluster' (in-cluster: the pod's service account" in run.output
    assert "as the pod's service account token" in run.output
    assert run.result("The stage namespace exists").outcome == "passed"
    assert run.result("A label that names another revision").outcome == "failed"  # as on any target
    events = audit_events(control_plane, run_id(run.output))
    assert events and usernames(events) == {f"system:serviceaccount:{NAMESPACE}:namespace-reader"}


def test_an_account_without_the_role_is_told_the_missing_permission(
    control_plane: ControlPlane, accounts: Kube, tmp_path: Path
) -> None:
    env = pod_environment(control_plane, accounts, NAMESPACE, "no-role", tmp_path / "sa")
    run = run_pytest([FEATURE, "--target", "in-cluster"], tmp_path, env)
    result = run.result("The stage namespace exists")
    assert result.outcome == "failed"
    assert (
        f'User "system:serviceaccount:{NAMESPACE}:no-role" cannot list resource "namespaces"'
        ' in API group "" at the cluster scope (HTTP 403 on GET /api/v1/namespaces'
        in result.message
    )
    assert "the credentials were accepted but that user lacks the permission" in result.message
    assert run.seconds < 60


def test_no_service_account_mounted_is_one_sentence(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "1",
           "STAGECHECK_SERVICEACCOUNT_DIR": str(tmp_path / "none")}  # fmt: skip
    run = run_pytest([FEATURE, "--target", "in-cluster"], tmp_path, env)
    assert run.returncode == 3
    assert "is not there: is automountServiceAccountToken false" in run.output
    assert "Traceback" not in run.output


PROVISIONING = str(ROOT / "tests" / "features" / "provisioning" / "provisioning.feature")


def test_a_reader_run_refuses_provisioning_before_any_write(
    control_plane: ControlPlane, accounts: Kube, tmp_path: Path
) -> None:
    env = pod_environment(control_plane, accounts, NAMESPACE, "namespace-reader", tmp_path / "sa")
    run = run_pytest([PROVISIONING, "-k", "kustomization", "--target", "in-cluster"], tmp_path, env)
    result = run.result("A kustomization is applied, becomes ready, and is removed afterwards")
    assert result.outcome == "failed"
    assert "is read-only in this run, and nothing was sent; rerun with --allow-writes" in (
        result.message
    )
    events = audit_events(control_plane, run_id(run.output))
    assert events and [e for e in events if e["verb"] in WRITE_VERBS] == []


def test_writes_allowed_without_the_provisioner_role_name_verb_and_resource(
    control_plane: ControlPlane, accounts: Kube, tmp_path: Path
) -> None:
    env = pod_environment(control_plane, accounts, NAMESPACE, "namespace-reader", tmp_path / "sa")
    run = run_pytest(
        [PROVISIONING, "-k", "kustomization", "--target", "in-cluster", "--allow-writes"],
        tmp_path,
        env,
    )
    result = run.result("A kustomization is applied, becomes ready, and is removed afterwards")
    assert result.outcome == "failed"
    account = f"system:serviceaccount:{NAMESPACE}:namespace-reader"
    # Provisioning reads what it will change first (to restore it): the first verb refused.
    assert f'User "{account}" cannot get resource "secrets"' in result.message
    assert "lacks the permission" in result.message
