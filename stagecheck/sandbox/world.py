"""Putting a world of objects into the sandbox: server-side apply of each document, then its
status through the status subresource (standing in for the operator that would write it).
Applying twice is harmless.

Two conveniences of world files: ``${name}`` placeholders filled from values the sandbox
knows (the Llama Stack version it runs, provider health), and the annotation
``stagecheck.io/owner: Kind.group/name``, which becomes an owner reference to that object
(as the operator that created it would set).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from string import Template
from typing import Any

import yaml

from stagecheck.kube.client import Kube
from stagecheck.kube.discovery import Discovery

OWNER_ANNOTATION = "stagecheck.io/owner"


def load_documents(*paths: Path, values: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Every YAML document in the files (or directories of *.yaml files), in order."""
    return [d for layer in load_world(*paths, values=values) for d in layer]


def load_world(*paths: Path, values: Mapping[str, str] | None = None) -> list[list[dict[str, Any]]]:
    """The documents of each file (of directories: each *.yaml file, sorted), file by file."""
    files = [f for p in paths for f in (sorted(p.glob("*.yaml")) if p.is_dir() else [p])]
    texts = [Template(f.read_text()).safe_substitute(values or {}) for f in files]
    return [[d for d in yaml.safe_load_all(text) if d] for text in texts]


def apply_documents(kube: Kube, documents: Iterable[dict[str, Any]]) -> int:
    """Apply each document and its status; returns how many were applied."""
    discovery = Discovery(kube)
    count = 0
    for original in documents:
        doc = copy.deepcopy(original)
        group = doc["apiVersion"].rpartition("/")[0]
        resource = discovery.resolve_when_served(f"{doc['kind']}.{group}" if group else doc["kind"])
        namespace = doc["metadata"].get("namespace") if resource.namespaced else None
        status = doc.pop("status", None)
        owner = (doc["metadata"].get("annotations") or {}).pop(OWNER_ANNOTATION, None)
        if owner:
            doc["metadata"]["ownerReferences"] = [
                _owner_reference(kube, discovery, owner, namespace)
            ]
        path = resource.object_path(doc["metadata"]["name"], namespace)
        kube.apply(path, doc, force=True)  # the GitOps hand: it owns what it writes
        if doc["kind"] == "Namespace" and not resource.group:
            _await_default_account(kube, doc["metadata"]["name"])
        if status is not None:
            status_doc = {"apiVersion": doc["apiVersion"], "kind": doc["kind"], "status": status}
            status_doc["metadata"] = {"name": doc["metadata"]["name"]}
            kube.apply(path + "/status", status_doc, force=True)
        count += 1
    return count


def _await_default_account(kube: Kube, namespace: str, timeout_s: float = 15.0) -> None:
    """Pods are admitted only once the namespace's ``default`` ServiceAccount exists, which
    the controller-manager creates a moment after the namespace."""
    deadline = time.monotonic() + timeout_s
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/default"
    while kube.get_or_none(path) is None and time.monotonic() < deadline:
        time.sleep(0.1)


def _owner_reference(
    kube: Kube, discovery: Discovery, owner: str, namespace: str | None
) -> dict[str, Any]:
    kind, _, name = owner.rpartition("/")
    resource = discovery.resolve(kind)
    found = kube.get(resource.object_path(name, namespace))
    return {
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "name": name,
        "uid": found["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
