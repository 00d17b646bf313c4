"""What a data plane records and reports: ``endpoints.json``, a service's status, the built
environments, and the one error a data plane raises."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NotRequired, TypedDict

from stagecheck.errors import StagecheckError
from stagecheck.sandbox.dataplane.models import Models


class DataPlaneError(StagecheckError):
    """A data-plane environment could not be built or a service did not come up."""


class Endpoints(TypedDict):
    """The contents of ``endpoints.json``."""

    services: dict[str, str]  # service -> base URL (OpenAI-style ones end in /v1)
    models: Models
    llama_stack_version: str | None  # None when Llama Stack is down
    llamastack_wiring: dict[str, str]  # provider_id -> the URL Llama Stack was configured with
    faults: list[str]
    down: dict[str, str]  # service -> why it is not serving (only under faults)
    # Options every conversion on this docling-serve needs (services.docling.OFFLINE_OPTIONS).
    docling_options: NotRequired[dict[str, str]]


@dataclass(frozen=True)
class Environment:
    """One built environment and the facts its build recorded (versions, model paths)."""

    name: str
    path: Path
    facts: Mapping[str, str]

    def bin(self, program: str) -> str:
        return str(self.path / "bin" / program)


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    url: str
    pid: int
    running: bool
    healthy: bool
    rss_mib: float  # resident memory of the whole process group
    log: Path
