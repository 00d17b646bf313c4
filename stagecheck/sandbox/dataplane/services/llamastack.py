"""Llama Stack, configured as the rh-dev distribution is, by its environment: the model server
(remote::vllm, VLLM_URL and INFERENCE_MODEL), Milvus (remote::milvus, MILVUS_ENDPOINT), the
sandbox's embeddings (remote::openai), files on inline::localfs. Run from its own environment as
a process (from its pod, by the data-plane kubelet, when the world runs), the starter
distribution as a container. It starts last: while it starts it connects to Milvus and lists
the models of its inference providers, so those must answer first.

As a process it sees the pod's container filesystem (``podfs``): the image's HOME
(/opt/app-root/src, where rh-dev keeps its SQLite stores) and each of the pod's volumes are
folders of its own bound at the container's paths, read-only where Kubernetes mounts them so
(a ConfigMap, a Secret, ``readOnly: true``); a ConfigMap's or Secret's folder holds its files.
So paths in the pod's variables and in the server's messages are the container's. Knowingly
different: those folders are made anew whenever the process starts (a kubelet keeps an
emptyDir across a container's restarts), and the process runs as root (the image as 1001), so
only a read-only mount stops its writes, never a file mode."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from pathlib import Path

import yaml

from stagecheck.sandbox.backends import NAMESPACE, resolved
from stagecheck.sandbox.dataplane.llamastack_config import (
    EMBEDDINGS_URL,
    STORE_DIR,
    llamastack_config,
    wiring_environment,
)
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
    PodConfig,
    ProcessContext,
    ProcessSpec,
    Service,
)
from stagecheck.sandbox.dataplane.podfs import Bind, confined
from stagecheck.sandbox.dataplane.probes import get_json, stack_healthy
from stagecheck.sandbox.dataplane.records import DataPlaneError
from stagecheck.sandbox.standins.mesh_gate import gate_urls

NAME = "llamastack"
IMAGE = "llamastack/distribution-starter:0.7.3"  # the process data plane's version
CONTAINER_PORT = 8321
CONTAINER_CONFIG = "/app/stagecheck-run.yaml"
CONTAINER_DATA = "/app/stagecheck-data"
# The rh-dev image's (ubi9/python-312): its HOME and WORKDIR
IMAGE_HOME, IMAGE_WORKDIR = "/opt/app-root/src", "/opt/app-root"
PODS = f"{NAMESPACE}/app=llama-stack"  # the mesh gate's workload: the operator's pod labels
# What the distribution's process may not be given from a pod's env: it runs on this machine.
HOST_VARIABLES = frozenset({"PATH", "HOME", "TMPDIR", "LD_PRELOAD", "LD_LIBRARY_PATH"})
# A data plane without a world: a pod spec as the world's would give it, wired to loopback.
DEFAULT_POD = PodConfig("(no pod: the data plane alone)")


def mesh_gate(sandbox_state: Path) -> str | None:
    """The proxy URL of the mesh gate bound to Llama Stack's pods (None: no stand-ins)."""
    return gate_urls(sandbox_state).get(PODS)


def wiring(urls: Mapping[str, str], faults: Collection[str], closed: str) -> dict[str, str]:
    """Provider id -> the URL a data plane without a world gives Llama Stack: its upstreams on
    loopback. ``llm-unreachable``: the vLLM URL is ``closed``, where nothing listens."""
    return {
        VLLM_PROVIDER: closed if "llm-unreachable" in faults else urls["llm"],
        EMBEDDINGS_PROVIDER: urls["embeddings"],
        MILVUS_PROVIDER: urls["milvus"],
    }


def process(ctx: ProcessContext) -> ProcessSpec:
    """The data plane alone: Llama Stack configured as the world's pod would configure it,
    with the loopback wiring."""
    return from_pod(ctx, DEFAULT_POD)


def from_pod(ctx: ProcessContext, pod: PodConfig) -> ProcessSpec:
    """Llama Stack as the pod's container configures the distribution: its environment, which
    the server substitutes into rh-dev's run configuration (llamastack_config). A data plane
    alone (``DEFAULT_POD``) gets the loopback wiring instead. It runs in the pod's container
    filesystem (``_binds``); calls to in-cluster URLs go through the mesh gate bound to the pod
    (the pod's network, its sidecar or none)."""
    folder = ctx.fresh_dir(NAME)
    port = ctx.ports[NAME][0]
    config = folder / "run.yaml"
    config.write_text(yaml.safe_dump(llamastack_config(STORE_DIR, port)))
    env = ctx.envs[NAME]
    if pod is DEFAULT_POD:
        given = wiring_environment(ctx.wiring, LLM_MODEL)
    else:
        given = {k: v for k, v in pod.env.items() if k not in HOST_VARIABLES}
        given = {k: _networked(v, ctx) for k, v in given.items()}
        given[EMBEDDINGS_URL] = ctx.urls["embeddings"]  # the sandbox's own, not rh-dev's
    variables = {
        **given,
        "HOME": IMAGE_HOME,
        "TIKTOKEN_CACHE_DIR": env.facts["tiktoken_cache"],
        "LLAMA_STACK_LOG_WIDTH": "200",
    }
    gate = mesh_gate(ctx.state.parent)
    if gate and pod is not DEFAULT_POD:  # NO_PROXY keeps loopback direct
        variables |= {"HTTP_PROXY": gate, "http_proxy": gate}
    server = [env.bin("llama"), "stack", "run", str(config), "--port", str(port)]
    return ProcessSpec(confined(server, _binds(folder, pod), IMAGE_WORKDIR), variables)


def _binds(folder: Path, pod: PodConfig) -> list[Bind]:
    """The image's HOME and each of the pod's mounts, each a folder of the process's own (a
    file for a ConfigMap's or Secret's key mounted through ``subPath``), holding the files the
    pod's ConfigMap and Secret volumes give it."""
    binds = [Bind(IMAGE_HOME, folder / "home")]
    binds[0].source.mkdir()
    for path, (_, read_only) in pod.mounts.items():
        source = folder / "mounts" / path.strip("/").replace("/", "_")
        source.parent.mkdir(parents=True, exist_ok=True)
        if path in pod.files:
            source.write_text(pod.files[path])
        else:
            source.mkdir()
            prefix = path.rstrip("/") + "/"
            for name, content in pod.files.items():
                key = name[len(prefix) :]
                if name.startswith(prefix) and "/" not in key:  # a key names no folder
                    (source / key).write_text(content)
        binds.append(Bind(path, source, read_only))
    return binds


def _networked(value: str, ctx: ProcessContext) -> str:
    """A variable holding a non-HTTP URL of a cluster Service (MILVUS_ENDPOINT, gRPC) names the
    loopback address of the process behind it, as cluster DNS resolves it for the pod; HTTP
    URLs keep their names and go through the mesh gate, which resolves them the same way."""
    if "://" not in value or value.startswith(("http://", "https://")):
        return value
    return resolved(value, ctx.urls)


def container(ctx: ContainerContext) -> ContainerSpec:
    """The distribution's entrypoint runs the configuration RUN_CONFIG_PATH names."""
    config = llamastack_config(CONTAINER_DATA, CONTAINER_PORT)
    # Published through the container's own network namespace: it must listen beyond loopback.
    config["server"]["host"] = "0.0.0.0"
    return ContainerSpec(
        NAME,
        IMAGE,
        (),
        CONTAINER_PORT,
        env={"RUN_CONFIG_PATH": CONTAINER_CONFIG, **wiring_environment(ctx.wiring, LLM_MODEL)},
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
        served = _served_on(listed, VLLM_PROVIDER) or LLM_MODEL  # the pod's INFERENCE_MODEL
        models["llm"] = _listed_id(listed, VLLM_PROVIDER, served) or models["llm"]
        models["llm_served"] = served
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


def _served_on(listed: list[str], provider_id: str) -> str | None:
    """The first model Llama Stack lists on that provider, without the provider's prefix."""
    prefix = f"{provider_id}/"
    return next((i[len(prefix) :] for i in listed if i.startswith(prefix)), None)


def _listed_id(listed: list[str], provider_id: str, model: str) -> str | None:
    return next((i for i in listed if i in (f"{provider_id}/{model}", model)), None)


SERVICE = Service(
    NAME,
    probe=stack_healthy,
    ready_timeout_s=120.0,
    process=process,
    after=("milvus", "llm", "embeddings"),
    from_pod=from_pod,
    default_pod=DEFAULT_POD,
    container=container,
    container_ready_timeout_s=300.0,
)
