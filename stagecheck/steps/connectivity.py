"""Connectivity diagnosis: a probe from where a workload runs.

    the workload "<deployment>" can reach "<url>"

The run needs --allow-writes: a short-lived probe pod is created with the workload's service
account and mesh settings on a node that runs containers, and deleted. Where every node is
kwok's (a kwok pod runs nothing) the scenario is skipped with that reason. The sandbox has
one such node, its stand-in kubelet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stagecheck.config import Target
from stagecheck.engine.kubernetes import Cluster
from stagecheck.steps.kubernetes import sentence

if TYPE_CHECKING:
    from stagecheck.engine.runs import Journal


@sentence(r'the workload "(?P<workload>[^"]+)" can reach "(?P<url>[^"]+)"')
def workload_can_reach(
    cluster: Cluster, target: Target, journal: Journal, workload: str, url: str
) -> None:
    from stagecheck.engine import probe  # where first used: see stagecheck/steps/__init__.py

    image = target.vars.get("probe_image", probe.DEFAULT_IMAGE)
    probe.can_reach(cluster.kube, target.namespace, workload, url, journal, image)
