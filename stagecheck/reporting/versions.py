"""The versions a run saw, recorded while it runs and written once at its end."""

from __future__ import annotations

import re

_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


class SeenVersions:
    """Versions by what they are versions of: ``kubernetes``, ``openshift``, ``llama-stack``.

    The reporting plugin records the cluster's own version when a run connects; steps record
    what they read (``seen_versions.record("llama-stack", "0.2.23")`` through the session
    fixture ``seen_versions``). All of it goes to Allure's ``environment.properties`` and to
    the stage status page. A thing seen at two versions keeps both, in the order seen.
    """

    def __init__(self) -> None:
        self._seen: dict[str, list[str]] = {}

    def record(self, what: str, version: str) -> None:
        name = _NAME.sub("-", what.strip()).strip("-").lower() or "unnamed"
        values = self._seen.setdefault(name, [])
        version = " ".join(str(version).split())
        if version and version not in values:
            values.append(version)

    def as_lists(self) -> dict[str, list[str]]:
        return {name: list(values) for name, values in self._seen.items()}

    def as_dict(self) -> dict[str, str]:
        return {name: ", ".join(values) for name, values in sorted(self._seen.items()) if values}
