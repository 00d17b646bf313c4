"""Docling steps. The service is reached through the target's ``docling`` endpoint.

    the Docling server "<name>" is ready [within <duration>]
    Docling answers its health check
    Docling converts "<file>" to Markdown containing "<text>"

The first checks the DoclingServe resource where the cluster serves it, else the Deployment of
that name. Files are named from the feature's repository (the folder holding stagecheck.toml).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from stagecheck.config import Target
from stagecheck.engine.kubernetes import Cluster
from stagecheck.reporting.versions import SeenVersions
from stagecheck.steps.kubernetes import WITHIN, sentence

if TYPE_CHECKING:
    from stagecheck.engine.endpoints import Endpoints


@sentence(r'the Docling server "(?P<name>[^"]+)" is ready' + WITHIN + "$")
def docling_ready(cluster: Cluster, name: str, within: float | None) -> None:
    cluster.expect_docling_ready(name, within)


@sentence("Docling answers its health check" + WITHIN)
def docling_healthy(
    endpoints: Endpoints, seen_versions: SeenVersions, within: float | None
) -> None:
    from stagecheck.engine import docling  # where first used: see stagecheck/steps/__init__.py
    from stagecheck.engine.dataplane import within_budget

    endpoint = endpoints.resolve("docling")
    version = within_budget(endpoint, within, lambda: docling.healthy(endpoint))
    if version:
        seen_versions.record("docling-serve", version)


@sentence(r'Docling converts "(?P<path>[^"]+)" to Markdown containing "(?P<text>[^"]+)"')
def docling_converts(
    endpoints: Endpoints, target: Target, repository: Path, path: str, text: str
) -> None:
    from stagecheck.engine import docling

    docling.converts(endpoints.resolve("docling"), target.vars, repository / path, text)
