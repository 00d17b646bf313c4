"""Llama Stack's vLLM wiring with and without the mesh gate (pure: no process starts)."""

from __future__ import annotations

import json
from pathlib import Path

from stagecheck.sandbox.dataplane.services import llamastack
from stagecheck.sandbox.standins.mesh_gate import GATES_FILE

URLS = {"llm": "http://127.0.0.1:1001/v1", "embeddings": "http://127.0.0.1:1002/v1"}
URLS |= {"milvus": "http://127.0.0.1:1003"}
CLOSED = "http://127.0.0.1:1009/v1"


def test_through_the_gate_llama_stack_names_the_model_by_its_in_cluster_url(
    tmp_path: Path,
) -> None:
    (tmp_path / GATES_FILE).parent.mkdir(parents=True)
    gate = "http://127.0.0.1:2001"
    (tmp_path / GATES_FILE).write_text(json.dumps({"workloads": {llamastack.PODS: gate}}))
    assert llamastack.mesh_gate(tmp_path) == gate
    wired = llamastack.wiring(URLS, [], CLOSED, gate)
    assert wired["vllm"] == (
        "http://mistral-24b-quantized-predictor.private-ai-demo.svc.cluster.local/v1"
    )
    assert wired["embeddings"] == URLS["embeddings"]  # loopback upstreams stay direct


def test_without_stand_ins_or_under_llm_unreachable_the_wiring_is_as_before(
    tmp_path: Path,
) -> None:
    assert llamastack.mesh_gate(tmp_path) is None
    assert llamastack.wiring(URLS, [], CLOSED, None)["vllm"] == URLS["llm"]
    assert llamastack.wiring(URLS, ["llm-unreachable"], CLOSED, "http://g")["vllm"] == CLOSED
