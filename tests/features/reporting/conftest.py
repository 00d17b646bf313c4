"""A step for the reporting tests only: records a version the way a stage's steps would."""

from __future__ import annotations

from pytest_bdd import parsers, step

from stagecheck.reporting import SeenVersions


@step(parsers.re(r'the run has seen (?P<what>[\w-]+) at version "(?P<version>[^"]+)"'))
def version_seen(seen_versions: SeenVersions, what: str, version: str) -> None:
    seen_versions.record(what, version)
