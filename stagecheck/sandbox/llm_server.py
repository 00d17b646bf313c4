"""The sandbox's model server: llama-cpp-python's OpenAI server, made to answer concurrent calls
the way vLLM does.

    python llm_server.py --model GGUF --model_alias NAME --port PORT [llama_cpp.server options]

llama-cpp-python serialises every request on the model's lock, listing the models too, and by
default a waiting request interrupts a streaming one. vLLM does neither: ``GET /v1/models``
answers while a generation runs, and concurrent generations are batched, never cut short. With
two workers (``pytest -n 2``) the stage's mesh probe lists the models while another scenario
generates; on llama-cpp-python's defaults the probe waits out its timeout and a streamed answer
can be cut. So here ``/v1/models`` answers from the settings, without the lock, and
``interrupt_requests`` is off. And as vLLM does (vllm/entrypoints/openai/serving_engine.py
``_check_model``), a request for a model it does not serve is refused with HTTP 404
``{"object": "error", "message": "The model `X` does not exist.", "type": "NotFoundError",
...}``, where llama-cpp-python would answer with its one model whatever the request names.
It runs in the model's own environment, so it imports nothing from stagecheck.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn
from fastapi import Depends
from llama_cpp.server.app import authenticate, create_app
from llama_cpp.server.cli import add_args_from_model, parse_model_from_args
from llama_cpp.server.settings import ModelSettings, ServerSettings, Settings

MODELS_PATH = "/v1/models"
GENERATING = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGI = Callable[[Scope, Receive, Send], Awaitable[None]]


def served_only(app: ASGI, served: set[str]) -> ASGI:
    """Refuse a generation for a model not served, as vLLM does; pass the rest on untouched."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or scope.get("path") not in GENERATING:
            await app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body"))
        body = b"".join(chunks)
        try:
            asked = json.loads(body or b"{}").get("model")
        except (ValueError, AttributeError):
            asked = None
        if asked is not None and asked not in served:
            error = {
                "object": "error",
                "message": f"The model `{asked}` does not exist.",
                "type": "NotFoundError",
                "param": None,
                "code": 404,
            }
            data = json.dumps(error).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.body", "body": data})
            return
        sent = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await app(scope, replay, send)

    return guarded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_args_from_model(parser, Settings)
    args = parser.parse_args()
    server = parse_model_from_args(ServerSettings, args)
    server.interrupt_requests = False
    models = [parse_model_from_args(ModelSettings, args)]
    app = create_app(server_settings=server, model_settings=models)
    listing: dict[str, Any] = {
        "object": "list",
        "data": [
            {"id": m.model_alias or m.model, "object": "model", "owned_by": "me", "permissions": []}
            for m in models
        ],
    }

    async def list_models() -> dict[str, Any]:
        return listing

    # Guarded as the original route is (an --api_key asks for a bearer token), and put first:
    # routes match in order, and FastAPI keeps the included router as one opaque entry.
    app.add_api_route(
        MODELS_PATH, list_models, methods=["GET"], dependencies=[Depends(authenticate)]
    )
    app.router.routes.insert(0, app.router.routes.pop())

    served = {str(m.model_alias or m.model) for m in models}
    uvicorn.run(served_only(app, served), host=server.host, port=server.port)


if __name__ == "__main__":
    main()
