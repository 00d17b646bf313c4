"""Choosing how the data plane runs: no Docker engine is detected in milliseconds and said so;
containers only when asked for and an engine answers."""

from __future__ import annotations

import json
import os
import re
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from stagecheck.errors import StagecheckError
from stagecheck.sandbox.cli import data_plane
from stagecheck.sandbox.containers import ContainerDataPlane
from stagecheck.sandbox.controlplane import ControlPlane
from stagecheck.sandbox.dataplane import DataPlane
from stagecheck.sandbox.runtime import (
    choose_runtime,
    docker_engine_problem,
    runtime_preference,
)
from tests.support import ROOT


@dataclass
class FakeEngine:
    socket: Path
    requests: list[str] = field(default_factory=list)  # the paths it was asked for


class DockerApi(BaseHTTPRequestHandler):
    """The two calls docker-py makes to find an engine: its API version, then /_ping."""

    def do_GET(self) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        if self.path == "/version":
            body, kind = json.dumps({"ApiVersion": "1.45"}).encode(), "application/json"
        elif self.path.endswith("/_ping"):
            body, kind = b"OK", "text/plain"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet (a unix socket has no client address to log)."""


class UnixHttpServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def docker_engine(tmp_path: Path) -> Iterator[FakeEngine]:
    """A real HTTP server on a unix socket that answers like a Docker engine."""
    engine = FakeEngine(tmp_path / "docker.sock")
    server = UnixHttpServer(str(engine.socket), DockerApi)
    server.requests = engine.requests  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield engine
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def stale_socket(tmp_path: Path) -> Path:
    """A socket file nothing listens on any more, as a stopped engine leaves behind."""
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
    return path


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_no_socket_and_no_docker_host_means_no_engine(tmp_path: Path) -> None:
    started = time.monotonic()
    problem = docker_engine_problem({}, tmp_path / "docker.sock")
    assert time.monotonic() - started < 0.05
    assert (
        problem
        == f"no Docker engine: DOCKER_HOST is not set and {tmp_path / 'docker.sock'} does not exist"
    )


def test_an_engine_that_does_not_answer_is_named(tmp_path: Path) -> None:
    problem = docker_engine_problem({"DOCKER_HOST": "tcp://127.0.0.1:1"}, tmp_path / "none")
    assert problem is not None and problem.startswith(
        "no Docker engine answers at tcp://127.0.0.1:1"
    )


def test_auto_falls_back_to_processes_and_container_is_refused(tmp_path: Path) -> None:
    socket = tmp_path / "docker.sock"
    assert choose_runtime("auto", {}, socket) == "process"
    assert choose_runtime("process", {"DOCKER_HOST": "tcp://127.0.0.1:1"}, socket) == "process"
    with pytest.raises(
        StagecheckError, match="--runtime container: no Docker engine.*use --runtime process"
    ):
        choose_runtime("container", {}, socket)


@pytest.mark.parametrize(
    ("option", "variables"),
    [(["--runtime", "container"], {}), ([], {"STAGECHECK_RUNTIME": "container"})],
    ids=["option", "environment"],
)
def test_the_command_refuses_a_container_runtime_before_starting_anything(
    tmp_path: Path, option: list[str], variables: dict[str, str]
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "STAGECHECK_RUNTIME"}
    # An engine address where none answers, so that an engine on this machine is never used.
    env["DOCKER_HOST"] = f"unix://{tmp_path / 'no-engine.sock'}"
    env["STAGECHECK_SANDBOX_DIR"] = str(tmp_path / "sandbox")
    result = subprocess.run(
        [str(ROOT / "scripts" / "sandbox"), "up", *option],
        env={**env, **variables},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "--runtime container: no Docker engine answers at unix://" in result.stderr
    assert not (tmp_path / "sandbox").exists(), "nothing was started or written"


def test_an_engine_that_answers_is_found_by_socket_or_docker_host(
    docker_engine: FakeEngine, tmp_path: Path
) -> None:
    assert docker_engine_problem({}, docker_engine.socket) is None
    assert (
        docker_engine_problem({"DOCKER_HOST": f"unix://{docker_engine.socket}"}, tmp_path) is None
    )
    assert docker_engine.requests[-1].endswith("/_ping")


def test_containers_only_when_asked_for_and_an_engine_answers(docker_engine: FakeEngine) -> None:
    assert choose_runtime("container", {}, docker_engine.socket) == "container"
    asked = len(docker_engine.requests)
    assert choose_runtime("auto", {}, docker_engine.socket) == "process"
    assert choose_runtime("process", {}, docker_engine.socket) == "process"
    assert len(docker_engine.requests) == asked, "auto and process ask no engine"


def test_a_socket_nobody_listens_on_is_named(stale_socket: Path) -> None:
    with pytest.raises(
        StagecheckError,
        match=re.escape(f"--runtime container: no Docker engine answers at {stale_socket}: ")
        + ".*; use --runtime process",
    ):
        choose_runtime("container", {}, stale_socket)


def test_docker_host_at_a_closed_port_is_named(closed_port: int, tmp_path: Path) -> None:
    with pytest.raises(
        StagecheckError,
        match=re.escape(f"no Docker engine answers at tcp://127.0.0.1:{closed_port}: "),
    ):
        choose_runtime("container", {"DOCKER_HOST": f"tcp://127.0.0.1:{closed_port}"}, tmp_path)


def test_the_option_comes_before_the_environment() -> None:
    assert runtime_preference(None, {}) == "auto"
    assert runtime_preference(None, {"STAGECHECK_RUNTIME": "container"}) == "container"
    assert runtime_preference("process", {"STAGECHECK_RUNTIME": "container"}) == "process"
    with pytest.raises(
        StagecheckError,
        match="STAGECHECK_RUNTIME='docker': expected one of auto, process, container",
    ):
        runtime_preference(None, {"STAGECHECK_RUNTIME": "docker"})


def test_down_and_status_find_the_runtime_that_was_started(tmp_path: Path) -> None:
    plane = ControlPlane(ROOT, tmp_path)
    state = tmp_path / "dataplane"
    found = data_plane(ROOT, tmp_path / "cache", plane)
    assert type(found) is DataPlane
    state.mkdir()
    (state / "containers.json").write_text(json.dumps({"engine": "unix:///none"}))
    assert isinstance(data_plane(ROOT, tmp_path / "cache", plane), ContainerDataPlane)
