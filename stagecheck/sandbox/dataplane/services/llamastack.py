"""Llama Stack, wired to the LLM (remote::vllm), the embeddings (remote::openai) and Milvus
(remote::milvus), files on inline::localfs; run from its own environment as a process, the
starter distribution as a container. It starts last: while it starts it connects to Milvus and
lists the models of its inference providers, so those must answer first."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from pathlib import Path

import yaml

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
from stagecheck.sandbox.dataplane.plan import (
    ContainerContext,
    ContainerSpec,
    ProcessContext,
    ProcessSpec,
    Service,
)
from stagecheck.sandbox.dataplane.probes import get_json, stack_healthy
from stagecheck.sandbox.dataplane.records import DataPlaneError
from stagecheck.sandbox.standins.mesh_gate import gate_urls

NAME = "llamastack"
IMAGE = "llamastack/distribution-starter:0.7.3"  # the process data plane's version
CONTAINER_PORT = 8321
CONTAINER_CONFIG = "/app/stagecheck-run.yaml"
CONTAINER_DATA = Path("/app/stagecheck-data")
# The vLLM URL of the world's LlamaStackDistribution (VLLM_URL), called through the mesh gate
# bound to Llama Stack's pods when the stand-ins run one (standins/mesh_gate.py)
MODEL_IN_CLUSTER = "http://mistral-24b-quantized-predictor.private-ai-demo.svc.cluster.local/v1"
PODS = "private-ai-demo/app=llama-stack"


def mesh_gate(sandbox_state: Path) -> str | None:
    """The proxy URL of the mesh gate bound to Llama Stack's pods (None: no stand-ins)."""
    return gate_urls(sandbox_state).get(PODS)


def wiring(
    urls: Mapping[str, str], faults: Collection[str], closed: str, gate: str | None = None
) -> dict[str, str]:
    """Provider id -> the URL Llama Stack is configured with, given where its upstreams are
    reached from where it runs. ``llm-unreachable``: the vLLM URL is ``closed``, where nothing
    listens. With a mesh ``gate``: the model's in-cluster URL, called through the gate."""
    vllm = MODEL_IN_CLUSTER if gate else urls["llm"]
    return {
        VLLM_PROVIDER: closed if "llm-unreachable" in faults else vllm,
        EMBEDDINGS_PROVIDER: urls["embeddings"],
        MILVUS_PROVIDER: urls["milvus"],
    }


def process(ctx: ProcessContext) -> ProcessSpec:
    home = ctx.fresh_dir(NAME)
    (home / "home").mkdir()
    port = ctx.ports[NAME][0]
    config = home / "run.yaml"
    config.write_text(yaml.safe_dump(llamastack_config(home / "data", port, ctx.wiring)))
    env = ctx.envs[NAME]
    variables = {
        "HOME": str(home / "home"),  # it keeps ~/.llama; not the user's
        "TIKTOKEN_CACHE_DIR": env.facts["tiktoken_cache"],
        "LLAMA_STACK_LOG_WIDTH": "200",
    }
    gate = mesh_gate(ctx.state.parent)
    if gate and ctx.wiring[VLLM_PROVIDER] == MODEL_IN_CLUSTER:  # NO_PROXY keeps loopback direct
        variables |= {"HTTP_PROXY": gate, "http_proxy": gate}
    return ProcessSpec(
        [env.bin("llama"), "stack", "run", str(config), "--port", str(port)], variables
    )


def container(ctx: ContainerContext) -> ContainerSpec:
    """The distribution's entrypoint runs the configuration RUN_CONFIG_PATH names."""
    config = llamastack_config(CONTAINER_DATA, CONTAINER_PORT, ctx.wiring)
    # Published through the container's own network namespace: it must listen beyond loopback.
    config["server"]["host"] = "0.0.0.0"
    return ContainerSpec(
        NAME,
        IMAGE,
        (),
        CONTAINER_PORT,
        env={"RUN_CONFIG_PATH": CONTAINER_CONFIG},
        files={CONTAINER_CONFIG: yaml.safe_dump(config).encode()},
    )


def planned_models() -> Models:
    """The model ids Llama Stack should list, before it has listed them."""
    return Models(
        llm=f"{VLLM_PROVIDER}/{LLM_MODEL}",
        llm_served=LLM_MODEL,
        embedding=f"{EMBEDDINGS_PROVIDER}/{EMBEDDING_MODEL}",
        embedding_served=EMBEDDING_MODEL,
        embedding_dimension=EMBEDDING_DIMENSION,
    )


def settle_llamastack(
    url: str, faults: Collection[str], await_ready: Callable[[], None], log_hint: str = ""
) -> tuple[str | None, Models, str | None]:
    """Wait for Llama Stack, then read its version and the ids it lists for the two models:
    (version, models, None). Under faults, a Llama Stack that does not come up or list them
    gives (None, models, why) instead of raising."""
    models = planned_models()
    try:
        await_ready()
        version, listed = _stack_facts(url)
        models["llm"] = _listed_id(listed, VLLM_PROVIDER, LLM_MODEL) or models["llm"]
        models["embedding"] = (
            _listed_id(listed, EMBEDDINGS_PROVIDER, EMBEDDING_MODEL) or models["embedding"]
        )
        if not faults and not {models["llm"], models["embedding"]} <= set(listed):
            raise DataPlaneError(
                f"Llama Stack at {url} is up but does not list both {models['llm']} and "
                f"{models['embedding']}; it lists {sorted(listed)}{log_hint}"
            )
    except DataPlaneError as error:
        if not faults:
            raise
        return None, models, str(error).split("\n", 1)[0]
    return version, models, None


def _stack_facts(base_url: str) -> tuple[str | None, list[str]]:
    version = get_json(f"{base_url}/v1/version") or {}
    listed = get_json(f"{base_url}/v1/models") or {}
    return version.get("version"), [str(m.get("id")) for m in listed.get("data", [])]


def _listed_id(listed: list[str], provider_id: str, model: str) -> str | None:
    return next((i for i in listed if i in (f"{provider_id}/{model}", model)), None)


SERVICE = Service(
    NAME,
    probe=stack_healthy,
    ready_timeout_s=120.0,
    process=process,
    after=("milvus", "llm", "embeddings"),
    container=container,
    container_ready_timeout_s=300.0,
)
