"""How the sandbox's data plane runs: local processes, or containers through testcontainers
where a Docker engine answers (users' laptops, CI runners).

The choice is made in milliseconds: without DOCKER_HOST and without a Docker socket there is
no engine to ask. ``auto`` takes containers when an engine answers, processes otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from stagecheck.errors import StagecheckError

Runtime = Literal["process", "container"]
Preference = Literal["auto", "process", "container"]
DOCKER_SOCKET = Path("/var/run/docker.sock")
PING_TIMEOUT_S = 2


def docker_engine_problem(env: Mapping[str, str], socket: Path = DOCKER_SOCKET) -> str | None:
    """Why no Docker engine can be used here, or None when one answers."""
    host = env.get("DOCKER_HOST")
    if not host and not socket.exists():
        return f"no Docker engine: DOCKER_HOST is not set and {socket} does not exist"
    try:
        import docker  # testcontainers' client; imported only when an engine may exist

        docker.DockerClient(base_url=host or f"unix://{socket}", timeout=PING_TIMEOUT_S).ping()
    except Exception as error:  # the client raises many kinds; all mean "no engine here"
        return f"no Docker engine answers at {host or socket}: {type(error).__name__}: {error}"
    return None


def choose_runtime(
    preference: Preference, env: Mapping[str, str], socket: Path = DOCKER_SOCKET
) -> Runtime:
    if preference == "process":
        return "process"
    problem = docker_engine_problem(env, socket)
    if preference == "container":
        if problem:
            raise StagecheckError(f"--runtime container: {problem}; use --runtime process")
        raise StagecheckError(
            "--runtime container: a Docker engine answers, but this version of stagecheck "
            "runs the data plane as local processes only; use --runtime process"
        )
    return "process"
