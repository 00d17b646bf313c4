"""API discovery: which kinds the cluster serves, so features name any kind (CRDs too).

Uses aggregated discovery (two requests) where the server offers it, and the per-group
listing otherwise. A kind the cluster does not serve fails at once with the closest kinds it
does serve: a wrong CRD group is a common real mistake.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stagecheck.errors import MisnamedKind, UnknownKind
from stagecheck.kube.client import Kube

AGGREGATED = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    preferred: bool = True
    has_status: bool = True  # serves a status subresource (a CRD may not: then it has none)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """kubectl's spelling: plural.group (core kinds have no group)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def collection_path(self, namespace: str | None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"

    def object_path(self, name: str, namespace: str | None) -> str:
        return f"{self.collection_path(namespace)}/{name}"

    def names(self) -> set[str]:
        return {self.kind.lower(), self.plural, self.singular, *self.short_names}


class Discovery:
    """The catalogue of served resource types, fetched once and refreshed on a miss; or, with
    no cluster (the lint), the catalogue a run saved (``Discovery.saved``)."""

    def __init__(self, kube: Kube | None, types: list[ResourceType] | None = None) -> None:
        self._kube = kube
        self._types = types
        self._lock = threading.Lock()

    @classmethod
    def saved(cls, path: Path) -> Discovery:
        """The kinds a run saw (``save``), or ``kubectl api-resources -o wide`` output."""
        text = path.read_text()
        if text.lstrip().startswith("["):
            return cls(None, [ResourceType(**{**t, "short_names": tuple(t["short_names"])})
                              for t in json.loads(text)])  # fmt: skip
        return cls(None, list(_from_api_resources(text)))

    def save(self, path: Path) -> bool:
        """Write the catalogue read so far for the lint; False when none was read."""
        if not self._types:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([dataclasses.asdict(t) for t in self._types], indent=0))
        return True

    def types(self, refresh: bool = False) -> list[ResourceType]:
        with self._lock:
            if self._kube is None:  # saved: nothing to refresh from
                return self._types or []
            if self._types is None or refresh:
                self._types = list(self._fetch())
            return self._types

    def resolve(self, text: str) -> ResourceType:
        """Resolve ``Kind``, ``plural``, ``Kind.group`` or ``kind.version.group`` to a type."""
        found = self._match(text, self.types())
        if found is None:  # a CRD may have been installed since the catalogue was read
            found = self._match(text, self.types(refresh=True))
        if found is None:
            message, misnamed = self.unknown_message(text)
            raise (MisnamedKind if misnamed else UnknownKind)(message)
        return found

    def match(self, text: str) -> ResourceType | None:
        """Like ``resolve`` on the catalogue already read; None when it has no such kind."""
        return self._match(text, self.types())

    def resolve_when_served(self, text: str, timeout_s: float = 30) -> ResourceType:
        """Like ``resolve``, waiting briefly for a CRD applied a moment ago to be served."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.resolve(text)
            except UnknownKind:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _match(self, text: str, types: list[ResourceType]) -> ResourceType | None:
        name, _, qualifier = text.strip().partition(".")
        name = name.lower()
        candidates = [t for t in types if name in t.names()]
        if qualifier:
            version, _, group = qualifier.partition(".")
            candidates = [
                t
                for t in candidates
                if t.group == qualifier.lower()
                or (t.version == version and t.group == group.lower())
            ]
        if not candidates:
            return None
        # Like kubectl: the preferred version, and the core group before any other.
        candidates.sort(key=lambda t: (not t.preferred, t.group != "", t.group))
        return candidates[0]

    def unknown_message(self, text: str) -> tuple[str, bool]:
        """Why the kind is unknown, and whether the feature misnamed a kind that is served."""
        types = self.types()
        name = text.split(".", 1)[0].lower()
        same_kind = sorted(
            {f"{t.kind}.{t.group or 'core'}/{t.version}" for t in types if name in t.names()}
        )
        if same_kind:
            return (
                f"the cluster serves no kind {text!r}: {text.split('.', 1)[0]} is served as "
                + ", ".join(same_kind)
                + " (is the API group in the feature right?)"
            ), True
        spellings: dict[str, ResourceType] = {}
        for t in types:
            for spelling in (t.kind, f"{t.kind}.{t.group}" if t.group else t.kind):
                spellings.setdefault(spelling.lower(), t)
        close = difflib.get_close_matches(text.lower(), list(spellings), n=4, cutoff=0.6)
        if not close:
            close = difflib.get_close_matches(name, list(spellings), n=4, cutoff=0.5)
        shown = list(
            dict.fromkeys(f"{spellings[c].kind} ({spellings[c].api_version})" for c in close)
        )
        hint = ("; closest served: " + ", ".join(shown)) if shown else ""
        return (
            f"the cluster serves no kind {text!r}{hint}. Is the operator that owns its CRD "
            "installed, and the kind spelled as in the CRD?"
        ), bool(shown)

    # -- fetching ----------------------------------------------------------------------------
    @property
    def _client(self) -> Kube:
        assert self._kube is not None, "a saved catalogue is never fetched"
        return self._kube

    def _fetch(self) -> Iterable[ResourceType]:
        core_doc = self._client.get("/api", accept=AGGREGATED)
        groups_doc = self._client.get("/apis", accept=AGGREGATED)
        if core_doc.get("kind") == "APIGroupDiscoveryList":
            yield from _from_aggregated(core_doc)
            yield from _from_aggregated(groups_doc)
            return
        yield from self._from_legacy_version("", "v1", preferred=True)
        for group in groups_doc.get("groups", []):
            preferred = group.get("preferredVersion", {}).get("version")
            for version in group.get("versions", []):
                yield from self._from_legacy_version(
                    group["name"], version["version"], version["version"] == preferred
                )

    def _from_legacy_version(
        self, group: str, version: str, preferred: bool
    ) -> Iterable[ResourceType]:
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        resources = self._client.get(path).get("resources", [])
        subresources = {r["name"] for r in resources if "/" in r["name"]}
        for resource in resources:
            if "/" in resource["name"]:
                continue  # subresources
            yield ResourceType(
                group=group,
                version=version,
                kind=resource["kind"],
                plural=resource["name"],
                singular=resource.get("singularName") or resource["kind"].lower(),
                namespaced=bool(resource.get("namespaced")),
                short_names=tuple(resource.get("shortNames", [])),
                preferred=preferred,
                has_status=f"{resource['name']}/status" in subresources,
            )


def _from_aggregated(doc: dict[str, Any]) -> Iterable[ResourceType]:
    for group in doc.get("items", []):
        group_name = group.get("metadata", {}).get("name", "")
        for index, version in enumerate(group.get("versions", [])):
            for resource in version.get("resources", []):
                kind = resource.get("responseKind", {}).get("kind", "")
                yield ResourceType(
                    group=group_name,
                    version=version["version"],
                    kind=kind,
                    plural=resource["resource"],
                    singular=resource.get("singularResource") or kind.lower(),
                    namespaced=resource.get("scope") == "Namespaced",
                    short_names=tuple(resource.get("shortNames", [])),
                    preferred=index == 0,  # versions are listed in preference order
                    has_status=any(
                        s.get("subresource") == "status" for s in resource.get("subresources") or []
                    ),
                )


def _from_api_resources(text: str) -> Iterable[ResourceType]:
    """``kubectl api-resources [-o wide]``: NAME SHORTNAMES APIVERSION NAMESPACED KIND ...,
    columns found by the header's positions (SHORTNAMES is often empty)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("NAME"):
        raise ValueError("neither a saved catalogue nor kubectl api-resources output")
    header = lines[0]
    names = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    starts = [header.index(n) for n in names] + [len(header) + 1000]
    for line in lines[1:]:
        cell = {n: line[starts[i] : starts[i + 1]].strip() for i, n in enumerate(names)}
        kind = cell["KIND"].split()[0] if cell["KIND"] else ""
        group, _, version = cell["APIVERSION"].rpartition("/")
        yield ResourceType(
            group=group,
            version=version,
            kind=kind,
            plural=cell["NAME"],
            singular=kind.lower(),
            namespaced=cell["NAMESPACED"] == "true",
            short_names=tuple(n for n in cell["SHORTNAMES"].split(",") if n),
        )
