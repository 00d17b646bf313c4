"""The models the data plane serves, under the names every stage knows them by."""

from __future__ import annotations

from typing import TypedDict

LLM_MODEL = "smollm2-135m"  # the name the LLM server serves, as vLLM's --served-model-name
EMBEDDING_MODEL = "all-MiniLM-L6-v2"
EMBEDDING_DIMENSION = 384
# Llama Stack's provider ids for the three upstreams: the rh-dev distribution's for vLLM and
# the remote Milvus (opendatahub-io/llama-stack-distribution rhoai-v2.25 distribution/run.yaml);
# the embeddings provider is the sandbox's own (rh-dev runs sentence-transformers inline).
VLLM_PROVIDER, EMBEDDINGS_PROVIDER, MILVUS_PROVIDER = (
    "vllm-inference",
    "embeddings",
    "milvus-remote",
)


class Models(TypedDict):
    llm: str  # the id Llama Stack lists (provider_id/model)
    llm_served: str  # the id the LLM server itself lists
    embedding: str
    embedding_served: str
    embedding_dimension: int
