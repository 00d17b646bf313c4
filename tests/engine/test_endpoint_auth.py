"""endpoint-auth applies to every endpoint: the token it names reaches that service on every
call, and an endpoint it does not name gets no token at all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest

from stagecheck.engine import dataplane
from stagecheck.engine.endpoints import Endpoints
from stagecheck.kube.client import Kube
from stagecheck.kube.discovery import Discovery
from tests.support import LocalHandler, local_http

CANARY = "canary-endpoint-token-31d7"
seen: list[str | None] = []  # the Authorization header of each request the server got


class ModelServer(LocalHandler):
    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        seen.append(self.headers.get("Authorization"))
        self.reply(json.dumps({"data": [{"id": "m"}]}).encode())


@pytest.fixture(scope="module")
def model_url() -> Iterator[str]:
    with local_http(ModelServer) as port:
        yield f"http://127.0.0.1:{port}/v1"


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
