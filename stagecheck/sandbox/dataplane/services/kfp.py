"""kfp-api-standin: NOT KFP; the pipelines API's healthz behind the route's token check, asked
of the control plane beside this data plane (see stagecheck.sandbox.kfp_api_standin). Process
only."""

from __future__ import annotations

import sys

from stagecheck.sandbox.backends import DSPA, NAMESPACE
from stagecheck.sandbox.dataplane.plan import ProcessContext, ProcessSpec, Service
from stagecheck.sandbox.dataplane.probes import answers_http

NAME = "kfp"


def process(ctx: ProcessContext) -> ProcessSpec:
    return ProcessSpec(
        [sys.executable, "-m", "stagecheck.sandbox.kfp_api_standin"]
        + ["--port", str(ctx.ports[NAME][0])]
        # The control plane beside this data plane answers the route's token checks.
        + ["--kubeconfig", str(ctx.state.parent / "kubeconfig")]
        + ["--namespace", NAMESPACE, "--dspa", DSPA],
        {"PYTHONPATH": str(ctx.root)},
    )


# Without a token it answers 401, which is an answer.
SERVICE = Service(NAME, probe=answers_http, ready_timeout_s=30.0, process=process)
