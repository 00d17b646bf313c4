"""Pipelines (DSPA) steps beyond conditions and pods, which the Kubernetes vocabulary covers.

the artifact bucket of the DSPA "<name>" is reachable with its credentials
the pipelines API of the DSPA "<name>" is healthy through its route
"""

from __future__ import annotations

from stagecheck.config import Target
from stagecheck.engine import pipelines, s3
from stagecheck.engine.endpoints import Endpoints
from stagecheck.engine.kubernetes import Cluster
from stagecheck.steps.kubernetes import sentence


@sentence(r'the artifact bucket of the DSPA "(?P<name>[^"]+)" is reachable with its credentials')
def dspa_bucket(cluster: Cluster, target: Target, endpoints: Endpoints, name: str) -> None:
    s3.dspa_bucket_reachable(cluster, target, endpoints, name)


@sentence(r'the pipelines API of the DSPA "(?P<name>[^"]+)" is healthy through its route')
def pipelines_api_healthy(
    target: Target, endpoints: Endpoints, cluster: Cluster, name: str
) -> None:
    pipelines.api_healthy(target, endpoints, cluster, name)
