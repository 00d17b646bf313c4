"""Choosing how the data plane runs: no Docker engine is detected in milliseconds and said so."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from stagecheck.errors import StagecheckError
from stagecheck.sandbox.runtime import choose_runtime, docker_engine_problem
from tests.support import ROOT


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


def test_the_command_refuses_a_container_runtime_before_starting_anything(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    env["STAGECHECK_SANDBOX_DIR"] = str(tmp_path / "sandbox")
    result = subprocess.run(
        [str(ROOT / "scripts" / "sandbox"), "up", "--runtime", "container"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert (
        "--runtime container: no Docker engine" in result.stderr
        or "--runtime container: a Docker engine answers" in result.stderr
    )
    assert not (tmp_path / "sandbox").exists(), "nothing was started or written"
