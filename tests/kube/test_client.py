"""The Kubernetes client: explicit contexts, read-only targets, discovery of any kind."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from stagecheck.config import Target
from stagecheck.errors import TargetUnreachable, UnknownKind, WriteRefused
from stagecheck.kube.client import Kube, connect
from stagecheck.kube.discovery import Discovery
from stagecheck.sandbox.controlplane import ControlPlane
from tests.support import two_context_kubeconfig


def cluster_target(kubeconfig: Path, context: str, allow_writes: bool = False) -> Target:
    return Target(
        f"cluster:{context}", "cluster", kubeconfig, context, "private-ai-demo", allow_writes
    )


def test_the_named_context_is_used_not_the_current_one(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    kubeconfig, real = two_context_kubeconfig(control_plane, tmp_path / "kubeconfig")
    kube = connect(cluster_target(kubeconfig, real))
    assert kube.version()["gitVersion"].startswith("v1.")
    kube.close()
    with pytest.raises(TargetUnreachable, match="context 'elsewhere'"):
        connect(cluster_target(kubeconfig, "elsewhere"))


def test_a_read_only_target_refuses_writes_before_sending_them(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    kubeconfig, real = two_context_kubeconfig(control_plane, tmp_path / "kubeconfig")
    kube = connect(cluster_target(kubeconfig, real))
    body = {"metadata": {"name": "must-not-exist"}, "data": {}}
    with pytest.raises(
        WriteRefused,
        match=r"refused POST .*read-only in this run; start the run with --allow-writes",
    ):
        kube.create("/api/v1/namespaces/default/configmaps", body)
    with pytest.raises(WriteRefused):
        kube.delete("/api/v1/namespaces/default/configmaps/kube-root-ca.crt")
    kube.close()
    time.sleep(1)  # the audit backend writes in batches of at most a second
    requests = [json.loads(line) for line in control_plane.audit_log.read_text().splitlines()]
    assert not [r for r in requests if "must-not-exist" in json.dumps(r.get("objectRef", {}))]
    assert not [
        r
        for r in requests
        if r["verb"] == "delete" and r.get("objectRef", {}).get("name") == "kube-root-ca.crt"
    ]


@pytest.mark.parametrize(
    "spelling",
    ["Deployment", "deployment", "deployments", "deploy", "Deployment.apps", "deployments.v1.apps"],
)
def test_kinds_resolve_however_kubectl_would_spell_them(kube: Kube, spelling: str) -> None:
    resource = Discovery(kube).resolve(spelling)
    assert (resource.group, resource.kind, resource.plural, resource.namespaced) == (
        "apps",
        "Deployment",
        "deployments",
        True,
    )


def test_core_and_cluster_scoped_kinds(kube: Kube) -> None:
    namespace = Discovery(kube).resolve("ns")
    assert (namespace.api_version, namespace.namespaced) == ("v1", False)
    assert namespace.object_path("x", "ignored") == "/api/v1/namespaces/x"


def test_a_crd_installed_after_discovery_is_found(kube: Kube) -> None:
    discovery = Discovery(kube)
    with pytest.raises(UnknownKind):
        discovery.resolve("Gadget")
    kube.create(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        {
            "metadata": {"name": "gadgets.later.example.com"},
            "spec": {
                "group": "later.example.com",
                "scope": "Cluster",
                "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": {"type": "object"}},
                    }
                ],
            },
        },
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            resource = discovery.resolve("Gadget")
            break
        except UnknownKind:
            assert time.monotonic() < deadline, "the new CRD was never served"
            time.sleep(0.2)
    assert (resource.group, resource.namespaced) == ("later.example.com", False)
    kube.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.later.example.com")
