"""A tiny OpenAI-style embeddings server over one sentence-transformers model, on loopback.

    python embeddings_server.py --model DIR --model-id NAME --port PORT

Serves ``GET /v1/models``, ``POST /v1/embeddings`` (``encoding_format`` float or base64, as
the OpenAI client asks by default) and ``GET /health``. It runs in its own environment
(Python 3.11, torch on CPU), so it imports nothing from stagecheck.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Never reach for a hub: the model is a directory on disk.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

MAX_INPUTS = 2048


class BadRequest(Exception):
    """A request this server cannot answer; the message goes back to the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Embedder:
    """One loaded model; encoding is serialized (torch uses all cores for one batch)."""

    def __init__(self, model_dir: str, model_id: str) -> None:
        from sentence_transformers import SentenceTransformer

        self.model_id = model_id
        self.model = SentenceTransformer(model_dir, device="cpu")
        self.dimension = len(self.embed(["dimension probe"])[0])
        self.lock = threading.Lock()

    def embed(self, texts: list[str]) -> list[list[float]]:
        vectors = self.model.encode(texts, convert_to_numpy=True, show_progress_bar=False)
        return [[float(x) for x in vector] for vector in vectors]

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        model = request.get("model")
        if model not in (None, self.model_id):
            raise BadRequest(
                404, f"model {model!r} is not served here; this serves {self.model_id!r}"
            )
        texts = _texts(request.get("input"))
        encoding = request.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            raise BadRequest(400, f"encoding_format {encoding!r} is not float or base64")
        with self.lock:
            vectors = self.embed(texts)
        data = [
            {"object": "embedding", "index": index, "embedding": _encode(vector, encoding)}
            for index, vector in enumerate(vectors)
        ]
        # Whitespace words stand in for tokens: callers only read usage as a rough size.
        tokens = sum(len(text.split()) for text in texts)
        return {
            "object": "list",
            "data": data,
            "model": self.model_id,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        if len(value) > MAX_INPUTS:
            raise BadRequest(400, f"at most {MAX_INPUTS} inputs per request, got {len(value)}")
        return list(value)
    raise BadRequest(400, "input must be a non-empty string or list of strings (token ids: no)")


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "float":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def handler_for(embedder: Embedder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.split("?")[0].rstrip("/")
            if path in ("/health", "/v1/health"):
                self._send(200, {"status": "OK"})
            elif path == "/v1/models":
                model = {
                    "id": embedder.model_id,
                    "object": "model",
                    "created": 0,
                    "owned_by": "stagecheck",
                }
                self._send(200, {"object": "list", "data": [model]})
            else:
                self._send(404, _error(f"GET {path} is not served here"))

        def do_POST(self) -> None:  # noqa: N802
            path = self.path.split("?")[0].rstrip("/")
            if path != "/v1/embeddings":
                self._send(404, _error(f"POST {path} is not served here"))
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                request = json.loads(self.rfile.read(length) or b"null")
                if not isinstance(request, dict):
                    raise BadRequest(400, "the body must be a JSON object")
                self._send(200, embedder.answer(request))
            except json.JSONDecodeError as error:
                self._send(400, _error(f"the body is not JSON: {error}"))
            except BadRequest as error:
                self._send(error.status, _error(str(error)))

        def _send(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            print(
                f"{time.strftime('%H:%M:%S')} {self.address_string()} {format % args}", flush=True
            )

    return Handler


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error"}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="directory of a sentence-transformers model")
    parser.add_argument("--model-id", required=True, help="the id /v1/models lists")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    started = time.monotonic()
    embedder = Embedder(args.model, args.model_id)
    server = ThreadingHTTPServer((args.host, args.port), handler_for(embedder))
    print(
        f"serving {args.model_id} (dimension {embedder.dimension}) on "
        f"http://{args.host}:{args.port} after {time.monotonic() - started:.1f}s",
        flush=True,
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
