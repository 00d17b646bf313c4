"""Putting a world of objects into the sandbox: server-side apply of each document, then its
status through the status subresource (standing in for the operator that would write it).
Applying twice is harmless."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from stagecheck.errors import UnknownKind
from stagecheck.kube.client import Kube
from stagecheck.kube.discovery import Discovery, ResourceType

CRD_SERVED_TIMEOUT_S = 30


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
        resource = _resolve_when_served(discovery, doc)
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


def _resolve_when_served(discovery: Discovery, doc: dict[str, Any]) -> ResourceType:
    """A CRD applied a moment ago takes a little while to be served: wait for it, briefly."""
    group = doc["apiVersion"].rpartition("/")[0]
    spelling = f"{doc['kind']}.{group}" if group else doc["kind"]
    deadline = time.monotonic() + CRD_SERVED_TIMEOUT_S
    while True:
        try:
            return discovery.resolve(spelling)
        except UnknownKind:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
