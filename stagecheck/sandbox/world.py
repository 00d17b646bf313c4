"""Putting a world of objects into the sandbox: server-side apply of each document, then its
status through the status subresource (standing in for the operator that would write it).
Applying twice is harmless."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from stagecheck.kube.client import Kube
from stagecheck.kube.discovery import Discovery


def load_documents(*paths: Path) -> list[dict[str, Any]]:
    """Every YAML document in the files (or directories of *.yaml files), in order."""
    files = [f for p in paths for f in (sorted(p.glob("*.yaml")) if p.is_dir() else [p])]
    return [d for f in files for d in yaml.safe_load_all(f.read_text()) if d]


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
        path = resource.object_path(doc["metadata"]["name"], namespace)
        kube.apply(path, doc)
        if status is not None:
            status_doc = {"apiVersion": doc["apiVersion"], "kind": doc["kind"], "status": status}
            status_doc["metadata"] = {"name": doc["metadata"]["name"]}
            kube.apply(path + "/status", status_doc)
        count += 1
    return count
