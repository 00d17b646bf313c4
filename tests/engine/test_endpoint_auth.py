"""endpoint-auth applies to every endpoint: the token it names reaches that service on every
call, and an endpoint it does not name gets no token at all."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest

from stagecheck.engine import dataplane
from stagecheck.engine.endpoints import Endpoints
from stagecheck.kube.client import Kube
from stagecheck.kube.discovery import Discovery

CANARY = "canary-endpoint-token-31d7"
seen: list[str | None] = []  # the Authorization header of each request the server got


class ModelServer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        seen.append(self.headers.get("Authorization"))
        body = json.dumps({"data": [{"id": "m"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def model_url() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ModelServer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def endpoints(kube: Kube, url: str, auth: dict[str, str]) -> Endpoints:
    target = replace(kube.target, endpoints={"model": url}, endpoint_auth=auth)
    return Endpoints(target, kube, Discovery(kube), {"MODEL_TOKEN": CANARY})


def test_the_named_token_reaches_the_model_server(kube: Kube, model_url: str) -> None:
    seen.clear()
    found = endpoints(kube, model_url, {"model": "env:MODEL_TOKEN"}).resolve("model")
    assert dataplane.served_models(found) == ["m"]
    assert seen == [f"Bearer {CANARY}"]
    assert CANARY not in repr(found) and CANARY not in found.describe()


def test_an_endpoint_without_endpoint_auth_gets_no_token(kube: Kube, model_url: str) -> None:
    seen.clear()
    found = endpoints(kube, model_url, {"pipelines": "env:MODEL_TOKEN"}).resolve("model")
    assert dataplane.served_models(found) == ["m"]
    assert seen == [None]
