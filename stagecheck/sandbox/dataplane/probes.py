"""Readiness probes: True when a service answers as itself, not merely on its port. The same
probes decide when a start may go on, what ``status`` reports, and when ``heal`` restarts."""

from __future__ import annotations

import socket
from typing import Any

import httpx


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def get_json(url: str) -> Any:
    try:
        response = httpx.get(url, timeout=3.0)
        return response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def lists_model(base_url: str, model: str) -> bool:
    """An OpenAI-style server lists the model under that id (llama.cpp, the embeddings server)."""
    listed = get_json(f"{base_url}/models")
    return isinstance(listed, dict) and model in {m.get("id") for m in listed.get("data", [])}


def lists_a_model(base_url: str) -> bool:
    """An OpenAI-style server lists a model (whatever name it was given)."""
    listed = get_json(f"{base_url}/models")
    return isinstance(listed, dict) and bool(listed.get("data"))


def stack_healthy(base_url: str) -> bool:
    health = get_json(f"{base_url}/v1/health")
    return isinstance(health, dict) and health.get("status") == "OK"


def milvus_answers(uri: str) -> bool:
    if not listening(int(uri.rsplit(":", 1)[1])):
        return False
    from pymilvus import MilvusClient  # slow to import; only needed here

    try:
        client = MilvusClient(uri=uri, timeout=3)
    except Exception:  # pymilvus raises MilvusException and grpc errors alike
        return False
    try:
        client.list_collections()
        return True
    except Exception:
        return False
    finally:
        client.close()


def docling_healthy(base_url: str) -> bool:
    health = get_json(f"{base_url}/health")
    return isinstance(health, dict) and health.get("status") == "ok"


def answers_http(url: str) -> bool:
    """Any HTTP answer at all (a 401 or a 403 is an answer)."""
    try:
        httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return False
    return True
