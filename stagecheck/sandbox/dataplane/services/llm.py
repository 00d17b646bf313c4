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
    PodConfig,
    ProcessContext,
    ProcessSpec,
    Service,
)
from stagecheck.sandbox.dataplane.probes import lists_a_model

NAME = "llm"
# Shared with the embeddings container: one llama.cpp image, one model cache.
LLAMA_CPP_IMAGE = "ghcr.io/ggml-org/llama.cpp:server-b8840"
LLAMA_CPP_PORT = 8080
MODEL_CACHE_VOLUME = "stagecheck-gguf-cache"  # named volume: the downloaded models
MODEL_CACHE = "/models"  # where the llama.cpp containers keep it (LLAMA_CACHE)
SERVER = Path(__file__).resolve().parents[2] / "llm_server.py"
GGUF = ("bartowski/SmolLM2-135M-Instruct-GGUF", "SmolLM2-135M-Instruct-Q4_K_M.gguf")


# A data plane without a world: the name vLLM would be given for it
DEFAULT_POD = PodConfig(
    "(no pod: the data plane alone)", args=(f"--served-model-name={LLM_MODEL}",)
)


def served_name(args: tuple[str, ...]) -> str:
    """The model name vLLM serves for these arguments: its last ``--served-model-name`` (its
    first value; vLLM lists each), else the ``--model`` it loads (vLLM's default), else vLLM's
    own default model."""
    name, model = "", ""
    for i, arg in enumerate(args):
        for flag in ("--served-model-name", "--model"):
            if arg == flag and i + 1 < len(args):
                value = args[i + 1]
            elif arg.startswith(f"{flag}="):
                value = arg.split("=", 1)[1]
            else:
                continue
            if flag == "--model":
                model = value
            else:
                name = value.split(",")[0].strip()
    return name or model or "facebook/opt-125m"


def process(ctx: ProcessContext) -> ProcessSpec:
    return from_pod(ctx, DEFAULT_POD)


def from_pod(ctx: ProcessContext, pod: PodConfig) -> ProcessSpec:
    """The model server as the predictor's kserve-container starts vLLM: the ServingRuntime's
    arguments with the InferenceService's appended (the KServe stand-in renders them), served
    under the name they give (RHOAI's vLLM template: ``--served-model-name={{.Name}}``, the
    InferenceService's name). The weights are always the small model this machine has."""
    env = ctx.envs[NAME]
    return ProcessSpec(
        [env.bin("python"), str(SERVER)]
        + ["--model", env.facts["model"], "--model_alias", served_name(pod.args)]
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
    probe=lists_a_model,
    ready_timeout_s=60.0,
    process=process,
    from_pod=from_pod,
    default_pod=DEFAULT_POD,
    path="/v1",
    container=container,
    container_ready_timeout_s=600.0,
)
