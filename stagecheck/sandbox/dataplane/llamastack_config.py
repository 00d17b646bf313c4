"""The Llama Stack run configuration: the rh-dev distribution's rules for its environment, in
the schema of the Llama Stack server the sandbox runs (one for both runtimes).

The rh-dev distribution RHOAI 2.25 runs (opendatahub-io/llama-stack-distribution rhoai-v2.25,
distribution/run.yaml) is configured by its container's environment, which the server itself
substitutes (``${env.X:=default}``, ``${env.X:+value}``, ``${env.X}`` required: llama-stack
core/stack.py ``replace_env_vars``). The same expressions are written here and the server
applies them to the variables the pod gives it:

    VLLM_URL         the vLLM provider's URL (default http://localhost:8000/v1)
    VLLM_API_TOKEN   its token (default fake); VLLM_MAX_TOKENS (4096); VLLM_TLS_VERIFY (true)
    INFERENCE_MODEL  the model registered on vllm-inference: required, no default
    MILVUS_ENDPOINT  turns on the remote Milvus provider milvus-remote (its uri); MILVUS_TOKEN

Knowingly different: the server is Llama Stack 0.7.3 where rh-dev 2.25 runs 0.2.22, whose
start-up registration is strict (it exits when vLLM is unreachable or does not serve
INFERENCE_MODEL: providers/remote/inference/vllm/vllm.py ``register_model``); 0.7.3 starts and
keeps the model listed, and its completions fail instead. The embedding model is the sandbox's
(all-MiniLM-L6-v2 on its own OpenAI-style server; rh-dev runs granite-embedding-125m inline);
no inline Milvus, eval, safety, telemetry or other conditional providers. The stores are two
SQLite files (0.7's ``kv_sqlite`` and ``sql_sqlite`` backends) and the files folder, in the folder
rh-dev's run.yaml keeps its stores in (``STORE_DIR``; a container runtime gives its own), where
rh-dev 2.25 has one file per store (registry.db, inference_store.db, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stagecheck.sandbox.dataplane.models import (
    EMBEDDING_DIMENSION,
    EMBEDDING_MODEL,
    EMBEDDINGS_PROVIDER,
    MILVUS_PROVIDER,
    VLLM_PROVIDER,
)

# The variables rh-dev reads, with what the sandbox's wiring gives each (wiring_environment)
VLLM_URL, INFERENCE_MODEL, MILVUS_ENDPOINT = "VLLM_URL", "INFERENCE_MODEL", "MILVUS_ENDPOINT"
EMBEDDINGS_URL = "STAGECHECK_EMBEDDINGS_URL"  # the sandbox's own embeddings server
# Where rh-dev 2.25's run.yaml keeps its SQLite stores and files: under the image's HOME
# (ubi9/python-312: /opt/app-root/src), written out (no variable configures it)
STORE_DIR = "/opt/app-root/src/.llama/distributions/rh"


def wiring_environment(wiring: Mapping[str, str], model: str) -> dict[str, str]:
    """The variables that configure Llama Stack with ``wiring`` (provider id -> URL) and the
    model ``model``: what a pod spec that is not the world's gives it (a data plane alone, a
    container)."""
    return {
        VLLM_URL: wiring[VLLM_PROVIDER],
        INFERENCE_MODEL: model,
        MILVUS_ENDPOINT: wiring[MILVUS_PROVIDER],
        EMBEDDINGS_URL: wiring[EMBEDDINGS_PROVIDER],
    }


def llamastack_config(store_dir: str, port: int) -> dict[str, Any]:
    """A Llama Stack 0.7 run configuration by rh-dev's rules (loopback only), its stores in
    ``store_dir`` as the server sees it; its URLs and the model come from the process's
    environment."""
    kv = {"backend": "kv_default"}
    sql = {"backend": "sql_default"}
    return {
        "version": 2,
        "distro_name": "stagecheck-sandbox",
        "apis": ["files", "inference", "responses", "tool_runtime", "vector_io"],
        "providers": {
            "inference": [
                {
                    "provider_id": VLLM_PROVIDER,
                    "provider_type": "remote::vllm",
                    "config": {
                        "base_url": "${env.VLLM_URL:=http://localhost:8000/v1}",
                        "api_token": "${env.VLLM_API_TOKEN:=fake}",
                        "max_tokens": "${env.VLLM_MAX_TOKENS:=4096}",
                        "tls_verify": "${env.VLLM_TLS_VERIFY:=true}",
                    },
                },
                {
                    "provider_id": EMBEDDINGS_PROVIDER,
                    "provider_type": "remote::openai",
                    "config": {"base_url": f"${{env.{EMBEDDINGS_URL}}}", "api_key": "unused"},
                },
            ],
            "vector_io": [
                {
                    "provider_id": f"${{env.MILVUS_ENDPOINT:+{MILVUS_PROVIDER}}}",
                    "provider_type": "remote::milvus",
                    "config": {
                        "uri": "${env.MILVUS_ENDPOINT:=}",
                        "token": "${env.MILVUS_TOKEN:=}",
                        "persistence": {**kv, "namespace": "vector_io::milvus_remote"},
                    },
                }
            ],
            "files": [
                {
                    "provider_id": "localfs",
                    "provider_type": "inline::localfs",
                    "config": {
                        "storage_dir": f"{store_dir}/files",
                        "metadata_store": {**sql, "table_name": "files_metadata"},
                    },
                }
            ],
            "responses": [
                {
                    "provider_id": "builtin",
                    "provider_type": "inline::builtin",
                    "config": {
                        "persistence": {
                            "agent_state": {**kv, "namespace": "agents"},
                            "responses": {**sql, "table_name": "responses"},
                        }
                    },
                }
            ],
            "tool_runtime": [
                {"provider_id": "file-search", "provider_type": "inline::file-search"}
            ],
        },
        "storage": {
            "backends": {
                "kv_default": {"type": "kv_sqlite", "db_path": f"{store_dir}/kvstore.db"},
                "sql_default": {"type": "sql_sqlite", "db_path": f"{store_dir}/sql_store.db"},
            },
            "stores": {
                "metadata": {**kv, "namespace": "registry"},
                "inference": {**sql, "table_name": "inference_store"},
                "conversations": {**sql, "table_name": "openai_conversations"},
                "prompts": {**kv, "namespace": "prompts"},
                "connectors": {**kv, "namespace": "connectors"},
            },
        },
        "registered_resources": {
            "models": [
                {
                    "model_id": "${env.INFERENCE_MODEL}",
                    "provider_id": VLLM_PROVIDER,
                    "model_type": "llm",
                },
                {
                    "model_id": EMBEDDING_MODEL,
                    "provider_id": EMBEDDINGS_PROVIDER,
                    "provider_model_id": EMBEDDING_MODEL,
                    "model_type": "embedding",
                    "metadata": {"embedding_dimension": EMBEDDING_DIMENSION},
                },
            ]
        },
        "server": {"host": "127.0.0.1", "port": port},
        "vector_stores": {
            "default_provider_id": f"${{env.MILVUS_ENDPOINT:+{MILVUS_PROVIDER}}}",
            "default_embedding_model": {
                "provider_id": EMBEDDINGS_PROVIDER,
                "model_id": EMBEDDING_MODEL,
            },
        },
    }
