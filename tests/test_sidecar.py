"""The run's own mesh sidecar is asked to stop as Istio's agent wants it: POST, from localhost."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from stagecheck.sidecar import quit_own_sidecar


class Agent(http.server.BaseHTTPRequestHandler):
    asked: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        Agent.asked.append(f"POST {self.path}")
        self.send_response(200)
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(405)  # pilot-agent's handleQuit takes POST only
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return None


@pytest.fixture
def agent() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Agent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Agent.asked = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/quitquitquit"
    finally:
        server.shutdown()
        server.server_close()


def test_the_agent_is_asked_once_with_a_post(agent: str) -> None:
    said = quit_own_sidecar(agent)
    assert Agent.asked == ["POST /quitquitquit"]
    assert said == f"the pod's mesh sidecar was asked to stop ({agent} answered 200)"


def test_without_a_sidecar_the_run_says_so() -> None:
    said = quit_own_sidecar("http://127.0.0.1:9/quitquitquit")  # discard port: nothing listens
    assert said.startswith("no mesh sidecar to stop: nothing answers http://127.0.0.1:9/")
