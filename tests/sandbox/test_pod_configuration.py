"""What a pod's spec gives the data-plane processes that answer for it (no server starts):
Llama Stack's environment through rh-dev's rules and its container filesystem (bubblewrap),
the model server's served name."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from stagecheck.sandbox.dataplane.plan import PodConfig, ProcessContext
from stagecheck.sandbox.dataplane.records import Environment
from stagecheck.sandbox.dataplane.services import llamastack, llm
from stagecheck.sandbox.standins.mesh_gate import GATES_FILE

URLS = {"llm": "http://127.0.0.1:1001/v1", "embeddings": "http://127.0.0.1:1002/v1"}
URLS |= {"milvus": "http://127.0.0.1:1003", "llamastack": "http://127.0.0.1:1004"}
CLOSED = "http://127.0.0.1:1009/v1"
MODEL_URL = "http://mistral-24b-quantized-predictor.private-ai-demo.svc.cluster.local/v1"
WORLD_POD = PodConfig(
    "private-ai-demo/llama-stack-1",
    env={
        "HF_HOME": "/.llama",
        "VLLM_URL": MODEL_URL,
        "INFERENCE_MODEL": "mistral-24b-quantized",
        "MILVUS_ENDPOINT": "tcp://milvus.private-ai-demo.svc.cluster.local:19530",
        "PATH": "/opt/app-root/bin",  # the image's: never given to a process of this machine
    },
    mounts={"/.llama": ("emptyDir", False)},
)


def context(tmp_path: Path, faults: tuple[str, ...] = ()) -> ProcessContext:
    envs = {
        name: Environment(name, tmp_path / "envs" / name, {"tiktoken_cache": "/t", "model": "/m"})
        for name in ("llamastack", "llm")
    }
    ports = {name: [int(url.split(":")[2].split("/")[0])] for name, url in URLS.items()}
    wiring = llamastack.wiring(URLS, faults, CLOSED)
    return ProcessContext(tmp_path / "dataplane", tmp_path, envs, ports, URLS, wiring, {}, faults)


def with_gate(tmp_path: Path) -> str:
    gate = "http://127.0.0.1:2001"
    (tmp_path / GATES_FILE).parent.mkdir(parents=True)
    (tmp_path / GATES_FILE).write_text(json.dumps({"workloads": {llamastack.PODS: gate}}))
    return gate


def test_llama_stack_takes_its_pods_variables_through_the_mesh_gate(tmp_path: Path) -> None:
    gate = with_gate(tmp_path)
    spec = llamastack.from_pod(context(tmp_path), WORLD_POD)
    # The model's in-cluster URL as the pod gives it; the gate bound to its pods resolves it.
    assert spec.env["VLLM_URL"] == MODEL_URL
    assert spec.env["HTTP_PROXY"] == spec.env["http_proxy"] == gate
    assert spec.env["INFERENCE_MODEL"] == "mistral-24b-quantized"
    # gRPC does not go through the gate: cluster DNS resolves the Service to its process.
    assert spec.env["MILVUS_ENDPOINT"] == "tcp://127.0.0.1:1003"
    # The process sees the container's paths (its emptyDir at /.llama); the image's PATH is
    # not given to a process of this machine.
    assert spec.env["HF_HOME"] == "/.llama" and spec.env["HOME"] == llamastack.IMAGE_HOME
    assert "PATH" not in spec.env


STORE = "/opt/app-root/src/.llama/distributions/rh"
CONFIG_POD = PodConfig(
    WORLD_POD.pod,
    WORLD_POD.env,
    mounts={**WORLD_POD.mounts, STORE: ("configMap:llamastack-config", True)},
    files={f"{STORE}/run.yaml": "version: 2\n"},
)


def in_the_pod(tmp_path: Path, pod: PodConfig, script: str) -> subprocess.CompletedProcess[str]:
    """``script`` run in the filesystem Llama Stack's process is given for ``pod``."""
    argv = llamastack.from_pod(context(tmp_path), pod).argv
    server = argv.index("--") + 1  # bubblewrap's own arguments end there
    return subprocess.run(
        [*argv[:server], "sh", "-c", script], capture_output=True, text=True, check=False
    )


def test_the_process_sees_the_pods_mounts_and_writes_only_where_the_pod_can(
    tmp_path: Path,
) -> None:
    done = in_the_pod(
        tmp_path,
        CONFIG_POD,
        f"cat {STORE}/run.yaml && touch /.llama/cache /opt/app-root/src/x && pwd "
        f"&& touch {STORE}/kvstore.db",
    )
    # The ConfigMap's file is there; the emptyDir and the image's HOME are writable; the
    # ConfigMap's folder is not, as Kubernetes mounts it, though the process runs as root.
    assert done.stdout.split() == ["version:", "2", "/opt/app-root"]
    assert "Read-only file system" in done.stderr and done.returncode == 1
    folder = tmp_path / "dataplane" / "llamastack"
    assert (folder / "home" / "x").exists()
    assert not list((folder / "mounts").glob("*/kvstore.db"))
    assert not Path("/opt/app-root").exists()  # made in the process's view only


def test_the_rh_dev_store_folder_is_writable_without_a_mount_over_it(tmp_path: Path) -> None:
    done = in_the_pod(tmp_path, WORLD_POD, f"mkdir -p {STORE} && touch {STORE}/kvstore.db")
    assert done.returncode == 0, done.stderr
    home = tmp_path / "dataplane" / "llamastack" / "home"
    assert (home / ".llama" / "distributions" / "rh" / "kvstore.db").exists()


def test_a_name_no_service_has_is_left_to_fail(tmp_path: Path) -> None:
    pod = PodConfig(
        WORLD_POD.pod, {**WORLD_POD.env, "MILVUS_ENDPOINT": "tcp://milvus.other.svc:19530"}
    )
    spec = llamastack.from_pod(context(tmp_path), pod)
    assert spec.env["MILVUS_ENDPOINT"] == "tcp://milvus.other.svc:19530"


def test_the_run_configuration_is_rh_devs_rules_over_the_environment(tmp_path: Path) -> None:
    llamastack.from_pod(context(tmp_path), WORLD_POD)
    config = yaml.safe_load((tmp_path / "dataplane" / "llamastack" / "run.yaml").read_text())
    # rh-dev's run.yaml keeps its stores under the image's HOME, written out
    assert config["storage"]["backends"]["kv_default"]["db_path"] == f"{STORE}/kvstore.db"
    vllm = config["providers"]["inference"][0]
    assert vllm["provider_id"] == "vllm-inference"
    assert vllm["config"]["base_url"] == "${env.VLLM_URL:=http://localhost:8000/v1}"
    assert config["registered_resources"]["models"][0]["model_id"] == "${env.INFERENCE_MODEL}"
    milvus = config["providers"]["vector_io"][0]
    assert milvus["provider_id"] == "${env.MILVUS_ENDPOINT:+milvus-remote}"


def test_without_a_world_llama_stack_gets_the_loopback_wiring(tmp_path: Path) -> None:
    spec = llamastack.process(context(tmp_path))
    assert spec.env["VLLM_URL"] == URLS["llm"] and "HTTP_PROXY" not in spec.env
    unreachable = llamastack.process(context(tmp_path, ("llm-unreachable",)))
    assert unreachable.env["VLLM_URL"] == CLOSED


def test_the_model_server_serves_the_name_its_arguments_give() -> None:
    runtime = ("--port=8080", "--model=/mnt/models", "--served-model-name=mistral-24b-quantized")
    assert llm.served_name(runtime) == "mistral-24b-quantized"
    # The InferenceService's own arguments follow the runtime's; the last one wins.
    assert llm.served_name((*runtime, "--served-model-name", "other")) == "other"
    assert llm.served_name(("--model=/mnt/models",)) == "/mnt/models"  # vLLM's default


def test_a_volume_mounted_inside_a_read_only_one_gets_its_mount_point(tmp_path: Path) -> None:
    tls = PodConfig(
        WORLD_POD.pod,
        WORLD_POD.env,
        mounts={"/etc/cfg": ("configMap:cfg", True), "/etc/cfg/tls": ("secret:tls", True)},
        files={"/etc/cfg/a": "A", "/etc/cfg/tls/key": "K"},
    )
    done = in_the_pod(tmp_path, tls, "cat /etc/cfg/a /etc/cfg/tls/key; touch /etc/cfg/tls/x")
    assert done.stdout == "AK" and "Read-only file system" in done.stderr
