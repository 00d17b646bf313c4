"""The LLM, standing in for vLLM: llama-cpp-python serving SmolLM2-135M-Instruct as a process
(through llm_server.py, which answers concurrent calls as vLLM does);
llama.cpp's server with the same model (GGUF) as a container."""

from __future__ import annotations

import os
from pathlib import Path

from stagecheck.sandbox.dataplane.models import LLM_MODEL
from stagecheck.sandbox.dataplane.plan import (
    ContainerContext,
    ContainerSpec,
    ProcessContext,
    ProcessSpec,
    Service,
)
from stagecheck.sandbox.dataplane.probes import lists_model

NAME = "llm"
# Shared with the embeddings container: one llama.cpp image, one model cache.
LLAMA_CPP_IMAGE = "ghcr.io/ggml-org/llama.cpp:server-b8840"
LLAMA_CPP_PORT = 8080
MODEL_CACHE_VOLUME = "stagecheck-gguf-cache"  # named volume: the downloaded models
MODEL_CACHE = "/models"  # where the llama.cpp containers keep it (LLAMA_CACHE)
SERVER = Path(__file__).resolve().parents[2] / "llm_server.py"
GGUF = ("bartowski/SmolLM2-135M-Instruct-GGUF", "SmolLM2-135M-Instruct-Q4_K_M.gguf")


def process(ctx: ProcessContext) -> ProcessSpec:
    env = ctx.envs[NAME]
    return ProcessSpec(
        [env.bin("python"), str(SERVER)]
        + ["--model", env.facts["model"], "--model_alias", LLM_MODEL]
        + ["--host", "127.0.0.1", "--port", str(ctx.ports[NAME][0]), "--n_ctx", "4096"]
        + ["--n_threads", str(min(2, os.cpu_count() or 1))]
    )


def container(ctx: ContainerContext) -> ContainerSpec:
    """The server downloads its model itself (--hf-repo/--hf-file) into the named volume."""
    return ContainerSpec(
        NAME,
        LLAMA_CPP_IMAGE,
        ("--hf-repo", GGUF[0], "--hf-file", GGUF[1], "--alias", LLM_MODEL)
        + ("--port", str(LLAMA_CPP_PORT), "--ctx-size", "4096", "--jinja"),
        LLAMA_CPP_PORT,
        path="/v1",
        env={"LLAMA_CACHE": MODEL_CACHE},
        volumes={MODEL_CACHE_VOLUME: MODEL_CACHE},
    )


SERVICE = Service(
    NAME,
    probe=lambda url: lists_model(url, LLM_MODEL),
    ready_timeout_s=60.0,
    process=process,
    path="/v1",
    container=container,
    container_ready_timeout_s=600.0,
)
