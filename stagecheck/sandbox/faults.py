"""Fault variants of the sandbox: real failures reproduced, to see the stage turn red.

A fault changes the world before it is applied (``change_world``), may write the status a
broken component would report once it exists (``after_apply``), and may change how the data
plane runs (``dataplane``: names the data plane understands).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stagecheck.errors import StagecheckError
from stagecheck.kube.client import Kube

Docs = list[dict[str, Any]]
# Bound straight to the node kwok leaves alone (no scheduler, no kubelet): the sandbox writes
# the pod's status, as a kubelet would.
UNMANAGED = {"nodeName": "unmanaged-node", "tolerations": [{"operator": "Exists"}]}


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    change_world: Callable[[Docs], Docs]
    after_apply: Callable[[Kube], None] = lambda kube: None
    dataplane: frozenset[str] = frozenset()
    values: dict[str, str] = field(default_factory=dict)

    def change_layers(self, layers: list[Docs]) -> list[Docs]:
        """``change_world`` over the world's files, each document kept in its own file's layer
        (a document the change adds joins the last layer)."""
        where = {id(d): i for i, layer in enumerate(layers) for d in layer}
        changed = self.change_world([d for layer in layers for d in layer])
        result: list[Docs] = [[] for _ in layers]
        for doc in changed:
            result[where.get(id(doc), len(layers) - 1)].append(doc)
        return result


def _find(docs: Docs, kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def _mesh_as_the_seed_had_it(docs: Docs) -> Docs:
    """The stage-2 incident's mesh: the control plane's ``autoInject`` at its v2.5 default
    (false, maistra/istio-operator smcp-templates/v2.5/base), and the Llama Stack operator's
    pod without ``sidecar.istio.io/inject`` (the operator has no way to set it). The API
    server's admission then sends the pod to the injector, which leaves it without istio-proxy
    (policy ``disabled``, no inject value): no container is removed here."""
    smcp = _find(docs, "ServiceMeshControlPlane", "data-science-smcp")
    injection = ((smcp.get("spec") or {}).get("proxy") or {}).get("injection") or {}
    injection.pop("autoInject", None)
    for doc in docs:  # a Deployment written into the world stands for the operator's
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "llama-stack":
            doc["spec"]["template"]["metadata"].pop("annotations", None)
    return docs


def _milvus_on_unmanaged_node(docs: Docs) -> Docs:
    spec = _find(docs, "Deployment", "milvus-standalone")["spec"]["template"]["spec"]
    spec.update(UNMANAGED)
    return docs


def _milvus_crash_loops(kube: Kube) -> None:
    """Write the status a kubelet reports for a Milvus that cannot start."""
    path = "/api/v1/namespaces/private-ai-demo/pods"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pods = kube.get(path, {"labelSelector": "app=milvus"})["items"]
        bound = [p for p in pods if p["spec"].get("nodeName")]
        if bound:
            break
        time.sleep(0.2)
    else:
        raise StagecheckError("fault milvus-down: the Milvus pod was never scheduled")
    for pod in bound:
        status = {
            "phase": "Running",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                 "message": "containers with unready status: [milvus]"},
            ],
            "containerStatuses": [
                {
                    "name": "milvus",
                    "image": "milvusdb/milvus:v2.4.15",
                    "imageID": "",
                    "ready": False,
                    "restartCount": 6,
                    "state": {"waiting": {"reason": "CrashLoopBackOff",
                              "message": "back-off 5m0s restarting failed container=milvus"}},
                    "lastState": {"terminated": {"exitCode": 134, "reason": "Error"}},
                }
            ],
        }  # fmt: skip
        kube.patch(f"{path}/{pod['metadata']['name']}/status", {"status": status})


def _pipelines_access_not_granted(docs: Docs) -> Docs:
    """The stage's workload account was never bound to the pipelines route's role."""
    binding = _find(docs, "RoleBinding", "ds-pipeline-user-access-dspa-rag-workload")
    return [d for d in docs if d is not binding]


FAULTS = {
    f.name: f
    for f in (
        Fault(
            name="seed-no-sidecar",
            description=(
                "the stage-2 incident: the Llama Stack operator creates its pod without the "
                "sidecar injection annotation and the mesh's autoInject is at its default "
                "(false), so the injector leaves the pod without istio-proxy; it cannot reach "
                "the model server through the mesh, and the model is never registered"
            ),
            change_world=_mesh_as_the_seed_had_it,
        ),
        Fault(
            name="dspa-wrong-credentials",
            description=(
                "the DSPA's Secret holds an S3 secret key the object store does not accept "
                "(a .env copied from another environment), so the operator's own object-store "
                "check fails and no pipeline component is deployed"
            ),
            # The cause only: the DSPO stand-in's StatObject with this key is refused by the
            # sandbox's S3, and ObjectStoreAvailable=False follows from that.
            change_world=lambda docs: docs,
            values={"s3_secret_key": "not-the-key-the-store-knows"},
        ),
        Fault(
            name="pipelines-access-not-granted",
            description=(
                "the stage's workload account is not bound to the pipelines route's role "
                "(ds-pipeline-user-access-dspa), so the pipelines API refuses its token"
            ),
            change_world=_pipelines_access_not_granted,
        ),
        Fault(
            name="milvus-down",
            description="Milvus standalone crash-loops and its server does not answer",
            change_world=_milvus_on_unmanaged_node,
            after_apply=_milvus_crash_loops,
            dataplane=frozenset({"milvus-down"}),
        ),
    )
}
