"""The images the stand-in node has a copy of: what a container of that image runs here.

The node pulls nothing. A container whose image it does not know runs its ``command`` with
this machine's programs (the probe's curl). One image it knows: the project's own, built from
``Containerfile`` (any registry and tag of a repository named ``stagecheck``, as deploy/'s
Job and CronJob name it). Its copy is the checkout the stand-ins run from: the Containerfile's
``ENV``, ``ENTRYPOINT`` and ``CMD`` are read from it, its ``WORKDIR`` is that checkout (what
the Containerfile copies there), and its programs are the ones of the Python environment the
stand-ins run in (where ``pytest`` and stagecheck are installed).

Knowingly different: not the built image: the checkout's files as they are now (uncommitted
changes too), this machine's Python and packages rather than deploy/constraints.txt's pins.
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import stagecheck

PROJECT_REPOSITORY = "stagecheck"


@dataclass(frozen=True)
class Image:
    reference: str
    workdir: Path  # the folder of this machine that is the image's WORKDIR
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    bin: Path | None = None  # where its programs are (first on PATH)

    def argv(self, command: list[str], args: list[str]) -> list[str]:
        """Kubernetes' rule: ``command`` replaces ENTRYPOINT, ``args`` replace CMD, and a
        ``command`` without ``args`` drops CMD."""
        head = command or list(self.entrypoint)
        tail = args if args else ([] if command else list(self.cmd))
        return [*head, *tail]


def repository(reference: str) -> str:
    """``ghcr.io/example/stagecheck:0.1.0`` -> ``stagecheck`` (digest and tag dropped)."""
    name = reference.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.split(":", 1)[0]


def known(reference: str) -> Image | None:
    if repository(reference) != PROJECT_REPOSITORY:
        return None
    checkout = Path(stagecheck.__file__).resolve().parent.parent
    containerfile = checkout / "Containerfile"
    if not containerfile.exists():
        return None  # an installed stagecheck: no copy of its image's files here
    instructions = _instructions(containerfile.read_text())
    env: dict[str, str] = {}
    for value in instructions.get("ENV", []):
        words = shlex.split(value)
        env.update(w.partition("=")[::2] for w in words if "=" in w)
    return Image(
        reference,
        checkout,
        entrypoint=_exec_form(instructions.get("ENTRYPOINT", [""])[-1]),
        cmd=_exec_form(instructions.get("CMD", [""])[-1]),
        env=env,
        bin=Path(sys.executable).parent,
    )


def _instructions(text: str) -> dict[str, list[str]]:
    """Instruction -> its values in order, continuation lines joined."""
    found: dict[str, list[str]] = {}
    logical = ""
    for line in text.splitlines():
        if not logical and (not line.strip() or line.lstrip().startswith("#")):
            continue
        logical += line.rstrip("\\").strip() + " "
        if line.rstrip().endswith("\\"):
            continue
        word, _, rest = logical.strip().partition(" ")
        found.setdefault(word.upper(), []).append(rest.strip())
        logical = ""
    return found


def _exec_form(value: str) -> tuple[str, ...]:
    if not value:
        return ()
    if value.startswith("["):
        return tuple(str(v) for v in json.loads(value))
    return ("/bin/sh", "-c", value)
