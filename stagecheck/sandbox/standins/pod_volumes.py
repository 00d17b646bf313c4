"""The stand-in node's volumes: what a pod's container sees at each of its ``volumeMounts``.

Rules followed (Kubernetes v1.3x, pkg/volume and pkg/kubelet):
- ``projected``: each source's files in one folder (pkg/volume/projected): a
  ``serviceAccountToken`` is a TokenRequest for the pod's ServiceAccount bound to the pod
  (``boundObjectRef`` kind Pod, its ``audience`` and ``expirationSeconds``), written at its
  ``path``; ``configMap`` / ``secret`` sources their keys (or ``items``); ``downwardAPI`` the
  fields it names. The ServiceAccount admission plugin puts ``kube-api-access-*`` (token,
  ``kube-root-ca.crt``'s ``ca.crt``, the namespace) on every pod: this is how a pod's process
  gets its account at ``/var/run/secrets/kubernetes.io/serviceaccount``.
- ``configMap`` / ``secret`` / ``downwardAPI`` volumes: their files; always mounted read-only
  (the kubelet's API-data volumes are read-only since v1.9.4).
- ``emptyDir``: a folder of the pod's, gone with the pod; ``persistentVolumeClaim``: a folder
  of the node's per bound volume, kept between pods (what a PersistentVolume is for).
- A ConfigMap or Secret that does not exist (and is not ``optional``): the container is not
  started; the kubelet reports ``ContainerCreating`` with the mount's failure.

Knowingly different: files are written once, when the pod starts (no refresh of a changed
ConfigMap or an expiring token); ``subPath``, ``defaultMode`` and other volume types
(hostPath, CSI, ...) are not modelled: a mount of another type is left out.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stagecheck.errors import NotFound, StagecheckError
from stagecheck.kube.client import JsonObject, Kube

ACCOUNT_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass(frozen=True)
class Bind:
    """One mount of a container: the node's folder at the container's path."""

    source: Path
    target: str
    read_only: bool


class MountFailed(StagecheckError):
    """A volume cannot be set up: the kubelet's MountVolume.SetUp error."""


def binds(
    kube: Kube, pod: JsonObject, container: JsonObject, folder: Path, claims: Path
) -> list[Bind]:
    """The container's mounts, their files made under ``folder`` (the pod's) and ``claims``
    (the node's, for persistent volumes)."""
    volumes = {v["name"]: v for v in (pod.get("spec") or {}).get("volumes") or []}
    made: list[Bind] = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"])
        if volume is None:
            continue
        source = _volume(kube, pod, volume, folder / "volumes" / volume["name"], claims)
        if source is None:
            continue
        read_only = bool(mount.get("readOnly")) or not _writable(volume)
        made.append(Bind(source, str(mount["mountPath"]), read_only))
    return sorted(made, key=lambda b: len(b.target))  # parents before what is mounted in them


def _writable(volume: JsonObject) -> bool:
    return "emptyDir" in volume or "persistentVolumeClaim" in volume


def _volume(
    kube: Kube, pod: JsonObject, volume: JsonObject, here: Path, claims: Path
) -> Path | None:
    if "emptyDir" in volume:
        here.mkdir(parents=True, exist_ok=True)
        return here
    if "persistentVolumeClaim" in volume:
        return _claim(kube, pod, volume["persistentVolumeClaim"]["claimName"], claims)
    sources: list[JsonObject]
    if "projected" in volume:
        sources = list(volume["projected"].get("sources") or [])
    elif any(k in volume for k in ("configMap", "secret", "downwardAPI")):
        sources = [volume]
    else:
        return None
    here.mkdir(parents=True, exist_ok=True)
    for source in sources:
        for path, content in _files(kube, pod, volume["name"], source).items():
            target = here / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    return here


def _files(kube: Kube, pod: JsonObject, volume: str, source: JsonObject) -> dict[str, bytes]:
    meta = pod["metadata"]
    namespace = meta["namespace"]
    if "serviceAccountToken" in source:
        wanted = source["serviceAccountToken"]
        token = _token(kube, pod, wanted.get("audience"), wanted.get("expirationSeconds", 3600))
        return {wanted["path"]: token.encode()}
    if "configMap" in source or "secret" in source:
        kind = "configMap" if "configMap" in source else "secret"
        ref = source[kind]
        name = ref.get("name") or ref.get("secretName") or ""
        plural = "configmaps" if kind == "configMap" else "secrets"
        found = kube.get_or_none(f"/api/v1/namespaces/{namespace}/{plural}/{name}")
        if found is None:
            if ref.get("optional"):
                return {}
            raise MountFailed(
                f'MountVolume.SetUp failed for volume "{volume}" : {kind.lower()} "{name}" not '
                "found"
            )
        data = {k: v.encode() for k, v in (found.get("data") or {}).items()}
        if kind == "secret":
            data = {k: base64.b64decode(v) for k, v in (found.get("data") or {}).items()}
        items = ref.get("items")
        if items:
            return {i["path"]: data[i["key"]] for i in items if i["key"] in data}
        return data
    if "downwardAPI" in source:
        return {
            item["path"]: _field(pod, item["fieldRef"]["fieldPath"]).encode()
            for item in source["downwardAPI"].get("items") or []
            if "fieldRef" in item
        }
    return {}


def _field(pod: JsonObject, path: str) -> str:
    meta = pod["metadata"]
    if path in ("metadata.labels", "metadata.annotations"):
        values: dict[str, Any] = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
    return str(meta.get(path.split(".", 1)[1], ""))


def _token(kube: Kube, pod: JsonObject, audience: str | None, seconds: int) -> str:
    meta = pod["metadata"]
    account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
    spec: JsonObject = {
        "expirationSeconds": int(seconds),
        "boundObjectRef": {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": meta["name"],
            "uid": meta["uid"],
        },
    }
    if audience:
        spec["audiences"] = [audience]
    path = f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{account}/token"
    try:
        issued = kube.create(
            path, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        )
    except NotFound:
        raise MountFailed(f'serviceaccounts "{account}" not found') from None
    return str(issued["status"]["token"])


def _claim(kube: Kube, pod: JsonObject, claim: str, claims: Path) -> Path:
    namespace = pod["metadata"]["namespace"]
    found = kube.get_or_none(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}")
    volume = ((found or {}).get("spec") or {}).get("volumeName")
    if not volume:
        raise MountFailed(f'persistentvolumeclaim "{claim}" is not bound')
    here = claims / str(volume)
    here.mkdir(parents=True, exist_ok=True)
    return here
