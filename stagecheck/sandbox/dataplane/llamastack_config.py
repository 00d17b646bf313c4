"""The Llama Stack run configuration over the data plane's services (one for both runtimes:
the processes give it loopback URLs, the containers the services' names on their network)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stagecheck.sandbox.dataplane.models import (
    EMBEDDING_DIMENSION,
    EMBEDDING_MODEL,
    EMBEDDINGS_PROVIDER,
    LLM_MODEL,
    MILVUS_PROVIDER,
    VLLM_PROVIDER,
)


def llamastack_config(data_dir: Path, port: int, wiring: Mapping[str, str]) -> dict[str, Any]:
    """A Llama Stack 0.7 run configuration over the local services, loopback only."""
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
                        "base_url": wiring[VLLM_PROVIDER],
                        "api_token": "unused",
                        "max_tokens": 1024,
                    },
                },
                {
                    "provider_id": EMBEDDINGS_PROVIDER,
                    "provider_type": "remote::openai",
                    "config": {"base_url": wiring[EMBEDDINGS_PROVIDER], "api_key": "unused"},
                },
            ],
            "vector_io": [
                {
                    "provider_id": MILVUS_PROVIDER,
                    "provider_type": "remote::milvus",
                    "config": {
                        "uri": wiring[MILVUS_PROVIDER],
                        "token": "",
                        "persistence": {**kv, "namespace": "vector_io::milvus_remote"},
                    },
                }
            ],
            "files": [
                {
                    "provider_id": "localfs",
                    "provider_type": "inline::localfs",
                    "config": {
                        "storage_dir": str(data_dir / "files"),
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
                "kv_default": {"type": "kv_sqlite", "db_path": str(data_dir / "kvstore.db")},
                "sql_default": {"type": "sql_sqlite", "db_path": str(data_dir / "sql_store.db")},
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
                    "model_id": LLM_MODEL,
                    "provider_id": VLLM_PROVIDER,
                    "provider_model_id": LLM_MODEL,
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
            "default_provider_id": MILVUS_PROVIDER,
            "default_embedding_model": {
                "provider_id": EMBEDDINGS_PROVIDER,
                "model_id": EMBEDDING_MODEL,
            },
        },
    }
