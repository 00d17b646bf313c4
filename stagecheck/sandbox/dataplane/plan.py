"""The one service plan both runtimes follow (local processes in ``processes.DataPlane``,
containers in ``stagecheck.sandbox.containers``): which services run, in which order, which
must answer before another starts, how each is probed and how long it may take. Each service's
recipe lives in ``services/<name>.py``; this module only says how recipes are put together.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from stagecheck.sandbox.dataplane.records import DataPlaneError, Environment

FAULTS = frozenset({"milvus-down", "llm-unreachable"})
LOOPBACK_ENV = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


@dataclass(frozen=True)
class ProcessSpec:
    """How a service runs as a local process: its command and the variables it adds."""

    argv: list[str]
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerSpec:
    """One container of the plan: what runs, how it is configured, which port it serves."""

    name: str  # the service, as in SERVICES; also its name on the network
    image: str
    command: tuple[str, ...]
    port: int  # served inside the container; published on 127.0.0.1
    path: str = ""  # what its base URL ends in ("/v1" for the OpenAI-style servers)
    env: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, bytes] = field(default_factory=dict)  # copied in before it starts
    volumes: Mapping[str, str] = field(default_factory=dict)  # named volume -> mount point

    @property
    def network_url(self) -> str:
        """Where the other containers reach it: by its name on the data plane's network."""
        return f"http://{self.name}:{self.port}{self.path}"


@dataclass(frozen=True)
class ProcessContext:
    """What a process recipe is given: where its files go, its ports, the others' URLs."""

    state: Path  # the data plane's state directory
    root: Path  # the project checkout
    envs: Mapping[str, Environment]
    ports: Mapping[str, list[int]]  # service -> its loopback ports; the first serves its URL
    urls: Mapping[str, str]
    wiring: Mapping[str, str]  # Llama Stack's provider id -> the URL it is given
    s3_keys: Mapping[str, str]  # the artifact store's one identity
    faults: Sequence[str] = ()

    def fresh_dir(self, *parts: str) -> Path:
        """An empty directory under the state directory (what a previous start left is gone)."""
        path = self.state.joinpath(*parts)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path


@dataclass(frozen=True)
class PodConfig:
    """What a pod of the world gives the process that answers for it, resolved as the kubelet
    resolves it: the main container's variables (``valueFrom`` read from their Secret or
    ConfigMap), its command and arguments, and where each of its volumes is mounted."""

    pod: str  # namespace/name
    env: Mapping[str, str] = field(default_factory=dict)
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    # mount path -> (what the volume is, read-only): "emptyDir", "persistentVolumeClaim",
    # "configMap:<name>", "secret:<name>"
    mounts: Mapping[str, tuple[str, bool]] = field(default_factory=dict)
    # files the container sees from ConfigMap/Secret volumes: mount path/key -> content
    files: Mapping[str, str] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """Equal for pods that would start the same process."""
        body = json.dumps(
            [dict(self.env), self.command, self.args, dict(self.mounts), dict(self.files)],
            sort_keys=True,
        )
        return hashlib.sha256(body.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ContainerContext:
    """What a container recipe is given: the artifact store's keys and Llama Stack's wiring
    (built from the upstreams' network URLs before Llama Stack's recipe is asked)."""

    s3_keys: Mapping[str, str]
    wiring: Mapping[str, str]


@dataclass(frozen=True)
class Service:
    """One service's recipe: how it runs as a process and (where it can) as a container."""

    name: str
    probe: Callable[[str], bool]  # given its base URL: True when it answers as itself
    ready_timeout_s: float  # as a local process
    process: Callable[[ProcessContext], ProcessSpec]
    path: str = ""  # what its base URL ends in
    ports: int = 1  # loopback ports the process needs; the first serves the URL
    after: tuple[str, ...] = ()  # services that must answer before it starts
    container: Callable[[ContainerContext], ContainerSpec] | None = None
    container_ready_timeout_s: float = 0.0  # longer: a first start downloads the models
    # Configured by its pod, as the real server is by its container's spec: the process is
    # started (and started again when the pod changes) by the data-plane kubelet from the pod
    # it answers for. ``process`` is then the recipe for ``default_pod``.
    from_pod: Callable[[ProcessContext, PodConfig], ProcessSpec] | None = None
    default_pod: PodConfig | None = None


def checked_faults(faults: Iterable[str]) -> list[str]:
    wanted = sorted(set(faults))
    if unknown := set(wanted) - FAULTS:
        raise DataPlaneError(f"unknown fault(s) {sorted(unknown)}; known: {sorted(FAULTS)}")
    return wanted


def kept_down(faults: Collection[str]) -> dict[str, str]:
    """Services a fault keeps from serving, and why; they are started, never waited for
    (``milvus-down``: Milvus's process exits as it starts; Llama Stack still points at it)."""
    if "milvus-down" in faults:
        return {"milvus": "its process exits as it starts (fault milvus-down)"}
    return {}


Step = tuple[Literal["launch", "await"], str]


def schedule(services: Sequence[Service]) -> list[Step]:
    """Launch in plan order; before a service that needs others, await those; at the end,
    await whatever is left, in plan order. So independent services boot side by side."""
    present = {s.name for s in services}
    steps: list[Step] = []
    awaited: set[str] = set()
    for service in services:
        for upstream in service.after:
            if upstream in present and upstream not in awaited:
                steps.append(("await", upstream))
                awaited.add(upstream)
        steps.append(("launch", service.name))
    steps.extend(("await", s.name) for s in services if s.name not in awaited)
    return steps
