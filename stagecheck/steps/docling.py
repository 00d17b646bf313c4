"""Docling steps. The service is reached through the target's ``docling`` endpoint.

    the Docling server "<name>" is ready [within <duration>]
    Docling answers its health check
    Docling converts "<file>" to Markdown containing "<text>"

The first checks the DoclingServe resource where the cluster serves it, else the Deployment of
that name. Files are named from the feature's repository (the folder holding stagecheck.toml).
"""

from __future__ import annotations

from pathlib import Path

from stagecheck.config import Target
from stagecheck.engine import docling
from stagecheck.engine.dataplane import within_budget
from stagecheck.engine.endpoints import Endpoints
from stagecheck.engine.kubernetes import Cluster
from stagecheck.reporting.versions import SeenVersions
from stagecheck.steps.kubernetes import WITHIN, sentence


@sentence(r'the Docling server "(?P<name>[^"]+)" is ready' + WITHIN + "$")
def docling_ready(cluster: Cluster, name: str, within: float | None) -> None:
    cluster.expect_docling_ready(name, within)


@sentence("Docling answers its health check" + WITHIN)
def docling_healthy(
    endpoints: Endpoints, seen_versions: SeenVersions, within: float | None
) -> None:
    endpoint = endpoints.resolve("docling")
    version = within_budget(endpoint, within, lambda: docling.healthy(endpoint))
    if version:
        seen_versions.record("docling-serve", version)


@sentence(r'Docling converts "(?P<path>[^"]+)" to Markdown containing "(?P<text>[^"]+)"')
def docling_converts(
    endpoints: Endpoints, target: Target, repository: Path, path: str, text: str
) -> None:
    docling.converts(endpoints.resolve("docling"), target.vars, repository / path, text)
