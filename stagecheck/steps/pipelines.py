"""Pipelines (DSPA) steps beyond conditions and pods, which the Kubernetes vocabulary covers.

the artifact bucket of the DSPA "<name>" is reachable with its credentials
the pipelines API of the DSPA "<name>" is healthy through its route
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stagecheck.config import Target
from stagecheck.engine.kubernetes import Cluster
from stagecheck.steps.kubernetes import sentence

if TYPE_CHECKING:
    from stagecheck.engine.endpoints import Endpoints


@sentence(r'the artifact bucket of the DSPA "(?P<name>[^"]+)" is reachable with its credentials')
def dspa_bucket(cluster: Cluster, target: Target, endpoints: Endpoints, name: str) -> None:
    from stagecheck.engine import s3  # where first used: see stagecheck/steps/__init__.py

    s3.dspa_bucket_reachable(cluster, target, endpoints, name)


@sentence(r'the pipelines API of the DSPA "(?P<name>[^"]+)" is healthy through its route')
def pipelines_api_healthy(
    target: Target, endpoints: Endpoints, cluster: Cluster, name: str
) -> None:
    from stagecheck.engine import pipelines

    pipelines.api_healthy(target, endpoints, cluster, name)
