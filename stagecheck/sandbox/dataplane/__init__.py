"""The local data plane: real services standing in for what an AI stage deploys, each a process
on loopback started from its own cached environment (built by scripts/build-dataplane).

    milvus      milvus-lite server (gRPC)                      stands in for Milvus standalone
    llm         llama-cpp-python serving SmolLM2-135M-Instruct  stands in for vLLM, under the
                name its pod's arguments give (--served-model-name)
    embeddings  all-MiniLM-L6-v2 behind OpenAI-style /v1/embeddings
    llamastack  Llama Stack server configured as rh-dev is, by its pod's environment
                (VLLM_URL, INFERENCE_MODEL, MILVUS_ENDPOINT; remote::openai embeddings,
                inline::localfs files)
    s3          SeaweedFS                                       stands in for the artifact store
    docling     docling-serve, without model weights            converts HTML, Markdown, DOCX
    kfp         kfp-api-standin: NOT KFP; the pipelines API's healthz behind the route's token
                check, asked of the control plane (see stagecheck.sandbox.kfp_api_standin)

    python -m stagecheck.sandbox.dataplane prepare|up|down|status|heal [--fault NAME]

With the stand-ins running (``scripts/sandbox up``), the model server and Llama Stack are
started by the data-plane kubelet (stagecheck.sandbox.standins.dataplane_kubelet) from the pods
the world's operators make, and started again when those pods change; alone, they are started
with the loopback wiring. The processes outlive the command that started them: their process
groups, ports and URLs are recorded in the state directory, logs go to
<state>/logs/<service>.log, temporary files to <state>/tmp/<service>, and ``down`` stops
exactly the process groups it recorded. ``heal`` restarts the services that died or stopped
answering.

Where to find what:

    services/<name>.py     one service's recipe: ports, command, variables, probe, timeouts,
                           and its container where it has one
    plan.py                how recipes are put together (order, upstreams, faults), for the
                           processes and the containers (stagecheck.sandbox.containers) alike
    processes.py           DataPlane: the plan as local processes
    supervisor.py          process groups, their records, start, stop, reap and restart
    exitcode.py            runs a process and records its exit code, as a container runtime
    llamastack_config.py   Llama Stack's run configuration
    probes.py              readiness probes
    models.py, records.py  model names; endpoints.json, statuses, environments, the error
"""

from __future__ import annotations

from stagecheck.sandbox.dataplane.llamastack_config import llamastack_config
from stagecheck.sandbox.dataplane.models import (
    EMBEDDING_DIMENSION,
    EMBEDDING_MODEL,
    EMBEDDINGS_PROVIDER,
    LLM_MODEL,
    MILVUS_PROVIDER,
    VLLM_PROVIDER,
    Models,
)
from stagecheck.sandbox.dataplane.plan import FAULTS, ContainerSpec, Service
from stagecheck.sandbox.dataplane.processes import PROJECT_ROOT, DataPlane
from stagecheck.sandbox.dataplane.records import (
    DataPlaneError,
    Endpoints,
    Environment,
    ServiceStatus,
)
from stagecheck.sandbox.dataplane.services import PLAN, PROBES, READY_TIMEOUT_S, SERVICES
from stagecheck.sandbox.dataplane.services.docling import OFFLINE_OPTIONS as DOCLING_OFFLINE_OPTIONS
from stagecheck.sandbox.dataplane.services.llamastack import settle_llamastack
from stagecheck.sandbox.dataplane.services.s3 import ACCESS_KEY as S3_ACCESS_KEY
from stagecheck.sandbox.dataplane.supervisor import LOG_TAIL_LINES, STOP_TIMEOUT_S

__all__ = [
    "DOCLING_OFFLINE_OPTIONS",
    "EMBEDDINGS_PROVIDER",
    "EMBEDDING_DIMENSION",
    "EMBEDDING_MODEL",
    "FAULTS",
    "LLM_MODEL",
    "LOG_TAIL_LINES",
    "MILVUS_PROVIDER",
    "PLAN",
    "PROBES",
    "PROJECT_ROOT",
    "READY_TIMEOUT_S",
    "S3_ACCESS_KEY",
    "SERVICES",
    "STOP_TIMEOUT_S",
    "VLLM_PROVIDER",
    "ContainerSpec",
    "DataPlane",
    "DataPlaneError",
    "Endpoints",
    "Environment",
    "Models",
    "Service",
    "ServiceStatus",
    "llamastack_config",
    "settle_llamastack",
]
