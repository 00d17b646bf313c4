"""How the sandbox's data plane runs: local processes, or containers through testcontainers
where a Docker engine answers (users' laptops, CI runners).

``auto`` and ``process`` run local processes without asking any engine: they are the path this
project tests, and usable wherever the sandbox runs; containers would pull several GB of images
and models on a first start, so they are never chosen behind the user's back. ``container`` is
chosen explicitly (``--runtime container`` or STAGECHECK_RUNTIME=container) and refused in
milliseconds, naming why, where no engine answers: without DOCKER_HOST and without a Docker
socket there is no engine to ask.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal, cast, get_args

from stagecheck.errors import StagecheckError

Runtime = Literal["process", "container"]
Preference = Literal["auto", "process", "container"]
RUNTIME_VARIABLE = "STAGECHECK_RUNTIME"
DOCKER_SOCKET = Path("/var/run/docker.sock")
PING_TIMEOUT_S = 2


def runtime_preference(option: str | None, env: Mapping[str, str]) -> Preference:
    """The ``--runtime`` option, else STAGECHECK_RUNTIME, else ``auto``."""
    value = option or env.get(RUNTIME_VARIABLE) or "auto"
    if value not in get_args(Preference):
        raise StagecheckError(
            f"{RUNTIME_VARIABLE}={value!r}: expected one of {', '.join(get_args(Preference))}"
        )
    return cast(Preference, value)


def docker_engine_url(env: Mapping[str, str], socket: Path = DOCKER_SOCKET) -> str:
    """Where the Docker engine is asked for: DOCKER_HOST, else the default socket."""
    return env.get("DOCKER_HOST") or f"unix://{socket}"


def docker_engine_problem(env: Mapping[str, str], socket: Path = DOCKER_SOCKET) -> str | None:
    """Why no Docker engine can be used here, or None when one answers."""
    host = env.get("DOCKER_HOST")
    if not host and not socket.exists():
        return f"no Docker engine: DOCKER_HOST is not set and {socket} does not exist"
    try:
        import docker  # testcontainers' client; imported only when an engine may exist

        client = docker.DockerClient(
            base_url=docker_engine_url(env, socket), timeout=PING_TIMEOUT_S
        )
        try:
            answered = client.ping()
        finally:
            client.close()
    except Exception as error:  # the client raises many kinds; all mean "no engine here"
        return f"no Docker engine answers at {host or socket}: {type(error).__name__}: {error}"
    if not answered:
        return f"no Docker engine answers at {host or socket}: its /_ping did not answer OK"
    return None


def choose_runtime(
    preference: Preference, env: Mapping[str, str], socket: Path = DOCKER_SOCKET
) -> Runtime:
    if preference != "container":
        return "process"
    if problem := docker_engine_problem(env, socket):
        raise StagecheckError(f"--runtime container: {problem}; use --runtime process")
    return "container"
