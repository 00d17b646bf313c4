"""The container data plane's plan: which images run, how they are wired to each other and
which ports they serve. Built without an engine (none exists here); nothing is started."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from stagecheck.sandbox.containers import (
    EMBEDDING_GGUF,
    LLAMA_CPP_IMAGE,
    LLAMA_STACK_IMAGE,
    LLM_GGUF,
    MILVUS_IMAGE,
    MODEL_CACHE_VOLUME,
    SEAWEEDFS_IMAGE,
    UNREACHABLE_MODEL_URL,
    ContainerDataPlane,
    ContainerSpec,
    container_plan,
    llamastack_wiring,
)
from stagecheck.sandbox.dataplane import (
    EMBEDDING_MODEL,
    EMBEDDINGS_PROVIDER,
    LLM_MODEL,
    MILVUS_PROVIDER,
    PLAN,
    VLLM_PROVIDER,
)
from stagecheck.sandbox.dataplane.plan import schedule

KEYS = {"access_key": "sandbox-dspa", "secret_key": "not-a-real-secret"}


def by_name(specs: list[ContainerSpec]) -> dict[str, ContainerSpec]:
    return {spec.name: spec for spec in specs}


def stack_config(spec: ContainerSpec) -> dict[str, Any]:
    """The run configuration Llama Stack's entrypoint is pointed at."""
    return dict(yaml.safe_load(spec.files[spec.env["RUN_CONFIG_PATH"]]))


def provider_urls(spec: ContainerSpec) -> dict[str, str]:
    """Provider id -> the URL Llama Stack is given: its run configuration names the variable
    (rh-dev's ``${env.VLLM_URL:=...}``), the container's environment holds the value."""
    providers = stack_config(spec)["providers"]
    found = {}
    for provider in providers["inference"] + providers["vector_io"]:
        expression = provider["config"].get("base_url") or provider["config"]["uri"]
        variable = expression.removeprefix("${env.").split(":")[0].rstrip("}")
        provider_id = provider["provider_id"]
        if provider_id.startswith("${env."):  # ${env.MILVUS_ENDPOINT:+milvus-remote}
            provider_id = provider_id.split(":+", 1)[1].rstrip("}")
        found[provider_id] = spec.env[variable]
    return found


def option(spec: ContainerSpec, name: str) -> str:
    return spec.command[spec.command.index(name) + 1]


def test_the_plan_runs_the_pinned_images_with_llama_stack_last() -> None:
    plan = container_plan([], KEYS)
    assert [(s.name, s.image) for s in plan] == [
        ("milvus", MILVUS_IMAGE),
        ("llm", LLAMA_CPP_IMAGE),
        ("embeddings", LLAMA_CPP_IMAGE),
        ("s3", SEAWEEDFS_IMAGE),
        ("llamastack", LLAMA_STACK_IMAGE),
    ]
    assert all(":" in s.image and not s.image.endswith(":latest") for s in plan)


def test_the_model_servers_download_and_serve_the_models_under_the_sandbox_names() -> None:
    specs = by_name(container_plan([], KEYS))
    llm, embeddings = specs["llm"], specs["embeddings"]
    assert (option(llm, "--hf-repo"), option(llm, "--hf-file")) == LLM_GGUF
    assert option(llm, "--alias") == LLM_MODEL
    assert (option(embeddings, "--hf-repo"), option(embeddings, "--hf-file")) == EMBEDDING_GGUF
    assert option(embeddings, "--alias") == EMBEDDING_MODEL
    assert "--embeddings" in embeddings.command and "--embeddings" not in llm.command
    for server in (llm, embeddings):
        assert option(server, "--port") == str(server.port)
        assert server.path == "/v1"
        assert server.volumes == {MODEL_CACHE_VOLUME: server.env["LLAMA_CACHE"]}


def test_llama_stack_reaches_each_service_by_its_name_and_port_on_the_network() -> None:
    specs = by_name(container_plan([], KEYS))
    assert provider_urls(specs["llamastack"]) == {
        VLLM_PROVIDER: f"http://llm:{specs['llm'].port}/v1",
        EMBEDDINGS_PROVIDER: f"http://embeddings:{specs['embeddings'].port}/v1",
        MILVUS_PROVIDER: f"http://milvus:{specs['milvus'].port}",
    }
    assert provider_urls(specs["llamastack"]) == llamastack_wiring([])
    config = stack_config(specs["llamastack"])
    assert config["server"] == {"host": "0.0.0.0", "port": specs["llamastack"].port}


def test_the_artifact_store_knows_only_the_sandbox_keys() -> None:
    s3 = by_name(container_plan([], KEYS))["s3"]
    config_path = next(a.split("=", 1)[1] for a in s3.command if a.startswith("-s3.config="))
    identities = json.loads(s3.files[config_path])["identities"]
    assert [i["credentials"] for i in identities] == [
        [{"accessKey": KEYS["access_key"], "secretKey": KEYS["secret_key"]}]
    ]
    assert f"-s3.port={s3.port}" in s3.command


def test_faults_change_what_runs_and_what_llama_stack_is_given() -> None:
    healthy = provider_urls(by_name(container_plan([], KEYS))["llamastack"])
    without_milvus = by_name(container_plan(["milvus-down"], KEYS))
    assert "milvus" not in without_milvus
    # Llama Stack still points at the Milvus that is not there.
    assert provider_urls(without_milvus["llamastack"]) == healthy

    unreachable = by_name(container_plan(["llm-unreachable"], KEYS))
    assert "llm" in unreachable
    assert provider_urls(unreachable["llamastack"]) == {
        **healthy,
        VLLM_PROVIDER: UNREACHABLE_MODEL_URL,
    }


def test_without_a_recorded_start_stop_and_status_ask_no_engine(tmp_path: Path) -> None:
    plane = ContainerDataPlane(tmp_path / "cache", tmp_path / "dataplane")
    assert plane.stop() is False
    assert plane.status() == {}


def test_the_containers_follow_the_process_data_plane_s_own_plan() -> None:
    """One plan for both runtimes: the containers are the plan's services that have a container
    recipe, in the plan's order, each probed by the plan's probe."""
    with_containers = [s.name for s in PLAN if s.container is not None]
    assert [spec.name for spec in container_plan([], KEYS)] == with_containers
    assert with_containers == ["milvus", "llm", "embeddings", "s3", "llamastack"]
    assert {"docling", "kfp"} <= {s.name for s in PLAN} - set(with_containers)


def test_the_schedule_starts_llama_stack_only_once_its_upstreams_answer() -> None:
    steps = schedule(list(PLAN))
    launch_stack = steps.index(("launch", "llamastack"))
    for upstream in ("milvus", "llm", "embeddings"):
        assert steps.index(("await", upstream)) < launch_stack
        assert steps.index(("launch", upstream)) < steps.index(("await", upstream))
    # Everything is launched once and awaited once.
    assert sorted(n for step, n in steps if step == "launch") == sorted(s.name for s in PLAN)
    assert sorted(n for step, n in steps if step == "await") == sorted(s.name for s in PLAN)
    # Without Milvus (fault milvus-down), Llama Stack waits for no Milvus.
    without = schedule([s for s in PLAN if s.name != "milvus"])
    assert ("await", "milvus") not in without and ("launch", "llamastack") in without
