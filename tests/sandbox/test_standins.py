"""The stand-in controllers' process against a real control plane: it settles, it is judged
truthfully, and its storage and route stand-ins follow the real rules (not the world files)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from stagecheck.kube.client import Kube
from stagecheck.sandbox.controlplane import ControlPlane
from stagecheck.sandbox.standins.process import StandIns
from stagecheck.sandbox.world import apply_documents, load_documents
from tests.support import ROOT, eventually

CRDS = ROOT / "stagecheck" / "sandbox" / "worlds" / "stage2" / "01-crds.yaml"
NAMESPACE = "standins-test"


@pytest.fixture(scope="module")
def standins(control_plane: ControlPlane, kube: Kube) -> Iterator[StandIns]:
    apply_documents(kube, load_documents(CRDS))
    apply_documents(
        kube, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}]
    )
    process = StandIns(control_plane.state, ROOT)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def test_a_claim_without_a_class_is_bound_by_the_pv_controller(
    standins: StandIns, kube: Kube
) -> None:
    path = f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims"
    body = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "milvus-data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    # The default class comes from the API server's DefaultStorageClass admission (once its
    # cache has seen the stand-in's class), never from this test.
    assert eventually(
        lambda: kube.create(path, body, dry_run=True)["spec"].get("storageClassName") == "standard"
    )
    claim = kube.create(path, body)
    bound = eventually(
        lambda: (kube.get(f"{path}/milvus-data").get("status") or {}).get("phase") == "Bound"
    )
    assert bound, kube.get(f"{path}/milvus-data")
    volume = f"pvc-{claim['metadata']['uid']}"
    pv = kube.get(f"/api/v1/persistentvolumes/{volume}")
    assert pv["status"]["phase"] == "Bound"
    assert pv["spec"]["capacity"]["storage"] == "1Gi"
    kube.delete(f"{path}/milvus-data")
    assert eventually(lambda: kube.get_or_none(f"/api/v1/persistentvolumes/{volume}") is None)


def test_a_claim_of_a_class_nobody_provisions_stays_pending(standins: StandIns, kube: Kube) -> None:
    path = f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims"
    kube.create(
        path,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "gp3-claim"},
            "spec": {
                "storageClassName": "gp3-csi",
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    standins.await_settled()
    assert kube.get(f"{path}/gp3-claim")["status"]["phase"] == "Pending"


def _route(name: str, host: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"to": {"kind": "Service", "name": "web"}}
    if host:
        spec["host"] = host
    return {
        "apiVersion": "route.openshift.io/v1",
        "kind": "Route",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def test_a_route_gets_its_host_and_is_admitted_and_a_second_claim_is_refused(
    standins: StandIns, kube: Kube
) -> None:
    routes = f"/apis/route.openshift.io/v1/namespaces/{NAMESPACE}/routes"
    kube.create(routes, _route("web.v1"))
    standins.await_settled()
    first = kube.get(f"{routes}/web.v1")
    # library-go AllocateHost: dots of the name become dashes, then the namespace, the domain
    assert first["spec"]["host"] == f"web-v1-{NAMESPACE}.apps.sandbox.local"
    assert first["metadata"]["annotations"]["openshift.io/host.generated"] == "true"
    (ingress,) = first["status"]["ingress"]
    assert ingress["routerName"] == "default"
    assert [(c["type"], c["status"]) for c in ingress["conditions"]] == [("Admitted", "True")]

    time.sleep(1.1)  # creation timestamps have one-second resolution: the second is younger
    kube.create(routes, _route("web-copy", first["spec"]["host"]))
    standins.await_settled()
    (copy_ingress,) = kube.get(f"{routes}/web-copy")["status"]["ingress"]
    (refused,) = copy_ingress["conditions"]
    assert (refused["status"], refused["reason"]) == ("False", "HostAlreadyClaimed")
    assert "web.v1" in refused["message"]
    # the older route keeps its admission
    (kept,) = kube.get(f"{routes}/web.v1")["status"]["ingress"]
    assert kept["conditions"][0]["status"] == "True"


def test_a_settled_world_is_not_rewritten(standins: StandIns, kube: Kube) -> None:
    standins.await_settled()
    routes = f"/apis/route.openshift.io/v1/namespaces/{NAMESPACE}/routes"

    def versions() -> dict[str, str]:
        found = kube.get(routes)["items"]
        return {r["metadata"]["name"]: r["metadata"]["resourceVersion"] for r in found}

    before = versions()
    assert before
    standins.await_settled()
    assert versions() == before


def test_status_says_healthy_then_names_the_dead_process(
    control_plane: ControlPlane, standins: StandIns
) -> None:
    health = standins.health()
    assert health.healthy, health.detail
    assert "route-host-and-router-standin" in health.detail
    pid = standins.pid()
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    assert eventually(lambda: standins.pid() is None, 5)
    dead = standins.health()
    assert not dead.healthy
    assert "not running" in dead.detail
    standins.start()  # what `scripts/sandbox up` does with a dead stand-in
    assert standins.health().healthy
