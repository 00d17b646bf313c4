"""A stand-in volume provisioner: NOT a CSI driver. It binds the sandbox's PVCs.

Without it a PVC in the sandbox stays Pending for ever (kwok runs no storage), so the stage's
own Milvus manifests never become available there. The rules are those of any dynamic
provisioner under Kubernetes' PV controller (kubernetes/kubernetes
pkg/controller/volume/persistentvolume/pv_controller.go; the external-provisioner library
sig-storage-lib-external-provisioner controller.go):

- The sandbox has one StorageClass, ``standard``, marked default
  (``storageclass.kubernetes.io/is-default-class``), ``volumeBindingMode: Immediate``,
  ``reclaimPolicy: Delete``, provisioner ``stagecheck.io/standin-provisioner``. The API
  server's DefaultStorageClass admission gives it to a PVC that names no class.
- The PV controller annotates a claim of that class with
  ``volume.kubernetes.io/storage-provisioner``; this stand-in then creates a PV
  ``pvc-<claim uid>`` of the claim's requested size, access modes and volume mode, pre-bound to
  it (``claimRef``), annotated ``pv.kubernetes.io/provisioned-by``; the PV controller binds them
  (the claim becomes ``Bound``, for real).
- A PV it provisioned whose claim is gone is ``Released``; with reclaim policy ``Delete`` it
  deletes it.

Where it knowingly differs: the volume is nowhere (kwok mounts nothing); no capacity limits,
no topology, and WaitForFirstConsumer classes are not provisioned.
"""

from __future__ import annotations

from stagecheck.kube.client import JsonObject
from stagecheck.sandbox.standins.base import Context, Reconciler, apply_owned, delete_owned

PROVISIONER = "stagecheck.io/standin-provisioner"
CSI_DRIVER = "standin-provisioner.stagecheck.io"
STORAGE_CLASS = "standard"
PROVISIONER_ANNOTATIONS = (
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
)


class VolumeProvisionerStandin(Reconciler):
    name = "volume-provisioner-standin"

    def reconcile(self, ctx: Context) -> None:
        apply_owned(
            ctx,
            self.name,
            None,
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {
                    "name": STORAGE_CLASS,
                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                },
                "provisioner": PROVISIONER,
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "Immediate",
            },
        )
        classes = {c["metadata"]["name"]: c for c in ctx.items("StorageClass.storage.k8s.io")}
        volumes = ctx.items("PersistentVolume")
        ours = {v["metadata"]["name"] for v in volumes}
        for claim in ctx.items("PersistentVolumeClaim"):
            if claim["spec"].get("volumeName") or claim.get("status", {}).get("phase") == "Bound":
                continue
            storage_class = classes.get(claim["spec"].get("storageClassName") or "")
            if storage_class is None or storage_class.get("provisioner") != PROVISIONER:
                continue
            annotations = claim["metadata"].get("annotations") or {}
            if not any(annotations.get(a) == PROVISIONER for a in PROVISIONER_ANNOTATIONS):
                continue  # the PV controller has not handed it to a provisioner yet
            name = f"pvc-{claim['metadata']['uid']}"
            if name not in ours:
                apply_owned(ctx, self.name, None, _volume(name, claim, storage_class))
        for volume in volumes:
            provisioned = (volume["metadata"].get("annotations") or {}).get(
                "pv.kubernetes.io/provisioned-by"
            )
            if (
                provisioned == PROVISIONER
                and (volume.get("status") or {}).get("phase") == "Released"
                and volume["spec"].get("persistentVolumeReclaimPolicy") == "Delete"
            ):
                delete_owned(ctx, "PersistentVolume", volume["metadata"]["name"], None)


def _volume(name: str, claim: JsonObject, storage_class: JsonObject) -> JsonObject:
    spec = claim["spec"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy") or "Delete",
            "storageClassName": storage_class["metadata"]["name"],
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": claim["metadata"]["namespace"],
                "name": claim["metadata"]["name"],
                "uid": claim["metadata"]["uid"],
            },
            # kwok mounts nothing; a CSI volume of a driver that no node runs says so honestly
            "csi": {"driver": CSI_DRIVER, "volumeHandle": name},
        },
    }
