"""The embedding model all-MiniLM-L6-v2 behind OpenAI-style /v1/embeddings: the project's own
server (stagecheck/sandbox/embeddings_server.py) as a process; llama.cpp's server with the
model as GGUF as a container."""

from __future__ import annotations

from pathlib import Path

from stagecheck.sandbox.dataplane.models import EMBEDDING_MODEL
from stagecheck.sandbox.dataplane.plan import (
    ContainerContext,
    ContainerSpec,
    ProcessContext,
    ProcessSpec,
    Service,
)
from stagecheck.sandbox.dataplane.probes import lists_model
from stagecheck.sandbox.dataplane.services.llm import (
    LLAMA_CPP_IMAGE,
    LLAMA_CPP_PORT,
    MODEL_CACHE,
    MODEL_CACHE_VOLUME,
)

NAME = "embeddings"
SERVER = Path(__file__).resolve().parents[2] / "embeddings_server.py"
GGUF = ("leliuga/all-MiniLM-L6-v2-GGUF", "all-MiniLM-L6-v2.Q8_0.gguf")


def process(ctx: ProcessContext) -> ProcessSpec:
    env = ctx.envs[NAME]
    return ProcessSpec(
        [env.bin("python"), str(SERVER)]
        + ["--model", env.facts["model"], "--model-id", EMBEDDING_MODEL]
        + ["--host", "127.0.0.1", "--port", str(ctx.ports[NAME][0])],
        # The torch wheel is a CUDA build; there is no GPU to look for.
        {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        | {"CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false"},
    )


def container(ctx: ContainerContext) -> ContainerSpec:
    return ContainerSpec(
        NAME,
        LLAMA_CPP_IMAGE,
        ("--hf-repo", GGUF[0], "--hf-file", GGUF[1])
        + ("--alias", EMBEDDING_MODEL, "--port", str(LLAMA_CPP_PORT))
        + ("--embeddings", "--pooling", "mean"),
        LLAMA_CPP_PORT,
        path="/v1",
        env={"LLAMA_CACHE": MODEL_CACHE},
        volumes={MODEL_CACHE_VOLUME: MODEL_CACHE},
    )


SERVICE = Service(
    NAME,
    probe=lambda url: lists_model(url, EMBEDDING_MODEL),
    ready_timeout_s=180.0,
    process=process,
    path="/v1",
    container=container,
    container_ready_timeout_s=600.0,
)
