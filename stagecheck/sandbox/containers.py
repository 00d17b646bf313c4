"""The sandbox's data plane as containers, started through testcontainers where a Docker engine
answers (users' laptops, CI runners): the same services as the process data plane, the same
``endpoints.json``, the same faults.

    milvus      Milvus standalone (embedded etcd, local storage)
    llm         llama.cpp's server with SmolLM2-135M-Instruct (GGUF)   stands in for vLLM
    embeddings  llama.cpp's server with all-MiniLM-L6-v2 (GGUF), /v1/embeddings
    s3          SeaweedFS with one identity whose keys only the sandbox knows
    llamastack  the Llama Stack starter distribution, given the process data plane's run
                configuration (``dataplane.llamastack_config``) wired to the services above

Which services run, in which order, how each is probed and how each container is configured
is the process data plane's own service plan (``stagecheck.sandbox.dataplane.plan`` and a
recipe per service in ``stagecheck.sandbox.dataplane.services``); docling-serve and the
pipelines stand-in have no container recipe and do not run here.

The containers share a user-defined network on which each is reachable by its service name;
each publishes one port on 127.0.0.1 only, at a port the engine picks. The llama.cpp servers
download their model from Hugging Face themselves (``--hf-repo``/``--hf-file``) into a named
volume that outlives the data plane, so later starts do not download again.

Like the processes, the containers outlive the command that started them: testcontainers'
reaper (Ryuk) is turned off, every container and the network carry a label naming this state
directory, and ``stop`` removes exactly what carries it. A failed or interrupted start removes
everything it created.

``endpoints.json`` lists the published loopback URLs under ``services``, and under
``llamastack_wiring`` the URLs Llama Stack was given, which name the services on the network.

UNTESTED HERE: the machines this project is built on have no Docker engine. ``container_plan``
is tested; the start and stop calls were once run against a fake Docker API only (which showed
the requests: loopback port bindings, network aliases, labels, the named volume, the copied
files); no container has ever run from this module. It was written against testcontainers
4.15.0 and docker (docker-py) 7.2.0 as installed in the project's environment, testcontainers'
MilvusContainer (whose settings the Milvus plan repeats), the llama.cpp server's documented
options, and the entrypoint of the Llama Stack distribution images (``RUN_CONFIG_PATH`` names
the run configuration). The images below are pinned but were never pulled here; the containers
need Hugging Face and the image registries. The starter image's own environment variables
(VLLM_URL, MILVUS_URL) are not used: its MILVUS_URL enables only the embedded
``inline::milvus``, not the Milvus container.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import docker
import requests
from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer
from testcontainers.core.exceptions import ContainerStartException
from testcontainers.core.network import Network

from stagecheck.sandbox.controlplane import free_ports
from stagecheck.sandbox.dataplane import (
    LOG_TAIL_LINES,
    PROJECT_ROOT,
    DataPlane,
    DataPlaneError,
    Endpoints,
    Environment,
    ServiceStatus,
    settle_llamastack,
)
from stagecheck.sandbox.dataplane.plan import (
    ContainerContext,
    ContainerSpec,
    checked_faults,
    kept_down,
    schedule,
)
from stagecheck.sandbox.dataplane.services import BY_NAME, PLAN, PROBES, SERVICES
from stagecheck.sandbox.dataplane.services import llamastack as llamastack_recipe
from stagecheck.sandbox.dataplane.services import s3 as s3_recipe
from stagecheck.sandbox.dataplane.services.embeddings import GGUF as EMBEDDING_GGUF
from stagecheck.sandbox.dataplane.services.llamastack import IMAGE as LLAMA_STACK_IMAGE
from stagecheck.sandbox.dataplane.services.llm import GGUF as LLM_GGUF
from stagecheck.sandbox.dataplane.services.llm import LLAMA_CPP_IMAGE, MODEL_CACHE_VOLUME
from stagecheck.sandbox.dataplane.services.milvus import IMAGE as MILVUS_IMAGE
from stagecheck.sandbox.dataplane.services.s3 import IMAGE as SEAWEEDFS_IMAGE

__all__ = [
    "EMBEDDING_GGUF",
    "LLAMA_CPP_IMAGE",
    "LLAMA_STACK_IMAGE",
    "LLM_GGUF",
    "MILVUS_IMAGE",
    "MODEL_CACHE_VOLUME",
    "SEAWEEDFS_IMAGE",
    "UNREACHABLE_MODEL_URL",
    "ContainerDataPlane",
    "ContainerSpec",
    "container_plan",
    "llamastack_wiring",
]

# Inside Llama Stack's container nothing listens on port 1: the llm-unreachable fault.
UNREACHABLE_MODEL_URL = "http://127.0.0.1:1/v1"
LOOPBACK = "127.0.0.1"
LABEL = "io.stagecheck.dataplane"  # value: the state directory the container belongs to
SERVICE_LABEL = "io.stagecheck.service"
RECORD_FILE = "containers.json"  # in the state directory: the engine and the network
ENGINE_TIMEOUT_S = 30
EXITED = frozenset({"exited", "dead"})
# What docker-py raises when the engine refuses or does not answer.
ENGINE_ERRORS = (docker.errors.DockerException, requests.RequestException)
CONTAINER_SERVICES = tuple(s for s in PLAN if s.container is not None)


def _specs(faults: Collection[str], s3_keys: Mapping[str, str]) -> dict[str, ContainerSpec]:
    """Every service's container, fault or not: first those that need no other, then (with
    Llama Stack's wiring to those by their names on the network) the others."""
    specs: dict[str, ContainerSpec] = {}
    for service in CONTAINER_SERVICES:
        if not service.after and service.container is not None:
            specs[service.name] = service.container(ContainerContext(s3_keys, {}))
    wiring = llamastack_recipe.wiring(
        {name: spec.network_url for name, spec in specs.items()}, faults, UNREACHABLE_MODEL_URL
    )
    for service in CONTAINER_SERVICES:
        if service.after and service.container is not None:
            specs[service.name] = service.container(ContainerContext(s3_keys, wiring))
    return {s.name: specs[s.name] for s in CONTAINER_SERVICES}


def llamastack_wiring(faults: Collection[str]) -> dict[str, str]:
    """Provider id -> the URL Llama Stack is configured with, by service name on the network.

    ``llm-unreachable``: the vLLM URL is a closed port."""
    upstreams = _specs(faults, {"access_key": "", "secret_key": ""})
    return llamastack_recipe.wiring(
        {name: spec.network_url for name, spec in upstreams.items()}, faults, UNREACHABLE_MODEL_URL
    )


def container_plan(faults: Collection[str], s3_keys: Mapping[str, str]) -> list[ContainerSpec]:
    """The containers to start, in the plan's order (Llama Stack last: its upstreams must
    answer first).

    ``milvus-down``: no Milvus container (Llama Stack still points at its network name)."""
    down = kept_down(faults)
    return [spec for name, spec in _specs(faults, s3_keys).items() if name not in down]


class ContainerDataPlane(DataPlane):
    """The data plane as containers on the Docker engine at ``engine`` (a DOCKER_HOST value).
    ``stop`` and ``status`` need no engine: they use the one recorded by ``start``."""

    def __init__(
        self,
        cache_dir: Path,
        state_dir: Path,
        root: Path = PROJECT_ROOT,
        engine: str | None = None,
    ) -> None:
        super().__init__(cache_dir, state_dir, root)
        self.engine = engine
        self.record_file = state_dir / RECORD_FILE

    @staticmethod
    def recorded(state_dir: Path) -> bool:
        """Whether a container data plane was started with this state directory."""
        return (state_dir / RECORD_FILE).is_file()

    def prepare(self) -> dict[str, Environment]:
        """Nothing to build: the engine pulls the images when the containers are created."""
        return {}

    # -- start ----------------------------------------------------------------------------

    def start(
        self, faults: Iterable[str] = frozenset(), defer_configured: bool = False
    ) -> Endpoints:
        """Start every container, wait until each service answers on its published port,
        write ``endpoints.json`` and return its contents. A data plane already running with
        the same faults is left as it is. Under a fault, a Llama Stack that does not come up
        is recorded in ``down``; any other service that does not come up is an error.
        Containers are never deferred (``defer_configured`` is ignored)."""
        wanted = checked_faults(faults)
        if self.engine is None:
            raise DataPlaneError("a container data plane starts only on a given Docker engine")
        current = self.endpoints()
        if current is not None and current["faults"] == wanted and self._all_up(current):
            return current
        self.stop()
        try:
            return self._start_containers(self.engine, wanted)
        except BaseException as error:
            self.stop()  # a failed or interrupted start leaves no container and no network
            if isinstance(error, ENGINE_ERRORS):
                raise DataPlaneError(
                    f"the Docker engine at {self.engine} failed the data plane's start: "
                    f"{type(error).__name__}: {error}"
                ) from error
            raise

    def _start_containers(self, engine: str, faults: list[str]) -> Endpoints:
        # The data plane outlives this command, as the processes do: no reaper may remove it.
        testcontainers_config.ryuk_disabled = True
        self.logs.mkdir(parents=True, exist_ok=True)
        keys = {"access_key": s3_recipe.ACCESS_KEY, "secret_key": secrets.token_urlsafe(24)}
        self.s3_credentials_file.touch(mode=0o600)
        self.s3_credentials_file.write_text(json.dumps(keys))
        client = {"environment": {"DOCKER_HOST": engine}}
        labels = {LABEL: str(self.state)}
        network = Network(docker_client_kw=client, docker_network_kw={"labels": labels})
        # Recorded before anything exists, so that stop() finds whatever gets created.
        self.record_file.write_text(json.dumps({"engine": engine, "network": network.name}))
        network.create()

        specs = {spec.name: spec for spec in container_plan(faults, keys)}
        urls: dict[str, str] = {}
        started: dict[str, DockerContainer] = {}
        down = kept_down(faults)
        for name in down:
            urls[name] = f"http://{LOOPBACK}:{free_ports(1)[0]}"  # nothing listens there
        settled = None
        for step, name in schedule([BY_NAME[name] for name in specs]):
            spec = specs[name]
            if step == "launch":
                started[name], urls[name] = self._run(spec, network, client)
            elif name == llamastack_recipe.NAME:
                settled = settle_llamastack(
                    urls[name],
                    faults,
                    partial(self._await_service, spec, urls[name], started[name]),
                )
            else:
                self._await_service(spec, urls[name], started[name])
        assert settled is not None  # Llama Stack is always in the plan
        version, models, why = settled
        if why:
            down["llamastack"] = why
        endpoints = Endpoints(
            services=urls,
            models=models,
            llama_stack_version=version,
            llamastack_wiring=llamastack_wiring(faults),  # as Llama Stack sees them
            faults=faults,
            down=down,
        )
        self.endpoints_file.write_text(json.dumps(endpoints, indent=2) + "\n")
        return endpoints

    def _run(
        self, spec: ContainerSpec, network: Network, client: dict[str, Any]
    ) -> tuple[DockerContainer, str]:
        """Create and start one container; itself and its URL on 127.0.0.1."""
        container = (
            DockerContainer(spec.image, docker_client_kw=client)
            .with_network(network)
            .with_network_aliases(spec.name)
            .with_envs(**spec.env)
            .with_kwargs(labels={LABEL: str(self.state), SERVICE_LABEL: spec.name})
        )
        if spec.command:
            container.with_command(list(spec.command))
        for path, content in spec.files.items():
            container.with_copy_into_container(content, path)
        for volume, mount in spec.volumes.items():
            container.with_volume_mapping(volume, mount, "rw")
        # testcontainers types a binding as a host port only; docker-py also takes
        # (host address,): published on that address, at a port the engine picks.
        bindings: dict[str, Any] = container.ports
        bindings[f"{spec.port}/tcp"] = (LOOPBACK,)
        try:
            container.start()
            port = container.get_docker_client().port(container.get_container_id(), spec.port)
        except (*ENGINE_ERRORS, ContainerStartException, ConnectionError) as e:
            raise DataPlaneError(
                f"{spec.name} did not start: image {spec.image}: {type(e).__name__}: {e}"
            ) from None
        return container, f"http://{LOOPBACK}:{port}{spec.path}"

    def _await_service(self, spec: ContainerSpec, url: str, container: DockerContainer) -> None:
        """Until the service answers as itself (the process data plane's probes); a container
        that exits fails at once, with its log."""
        timeout = BY_NAME[spec.name].container_ready_timeout_s
        deadline = time.monotonic() + timeout
        wrapped = container.get_wrapped_container()
        while True:
            if PROBES[spec.name](url):
                return
            wrapped.reload()
            if wrapped.status in EXITED:
                code = wrapped.attrs["State"].get("ExitCode")
                raise self._not_up_in(spec, wrapped, f"its container exited (code {code})")
            if time.monotonic() > deadline:
                raise self._not_up_in(spec, wrapped, f"no answer at {url} within {timeout:.0f}s")
            time.sleep(0.5)

    def _not_up_in(self, spec: ContainerSpec, container: Any, why: str) -> DataPlaneError:
        """The error for a service that did not come up, with its container's log, kept in
        <state>/logs/<service>.log too (the container is removed when the start fails)."""
        log = self.logs / f"{spec.name}.log"
        log.write_bytes(container.logs())
        tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        last = next((line.strip() for line in reversed(tail) if line.strip()), "(empty log)")
        return DataPlaneError(
            f"{spec.name} did not come up: {why}; container {container.short_id} of image "
            f"{spec.image}; last log line: {last}; log: {log}\n"
            f"--- last {len(tail)} lines of {log} ---\n" + "\n".join(tail)
        )

    # -- stop -----------------------------------------------------------------------------

    def stop(self) -> bool:
        """Remove every container and the network labelled with this state directory on the
        recorded engine; False when nothing was recorded."""
        record = self._record()
        if record is None:
            return False
        try:
            with _engine(record["engine"]) as client:
                for container in client.containers.list(all=True, filters=self._selector):
                    container.remove(force=True, v=True)
                for network in client.networks.list(filters=self._selector):
                    network.remove()
        except ENGINE_ERRORS as error:
            raise DataPlaneError(
                f"the data plane's containers are on the Docker engine at {record['engine']}, "
                f"which did not remove them: {type(error).__name__}: {error}; "
                "once it answers, stop the sandbox again"
            ) from None
        self.record_file.unlink()
        self.endpoints_file.unlink(missing_ok=True)
        return True

    def heal(self) -> list[str]:
        """Containers are not restarted one by one: ``status`` reports a dead one red, and
        ``up`` starts the data plane anew when one is not running."""
        return []

    # -- state ----------------------------------------------------------------------------

    def status_of(self, name: str) -> ServiceStatus | None:
        return self.status().get(name)

    def status(self) -> dict[str, ServiceStatus]:
        """Each service of the recorded data plane: whether its container runs, whether it
        answers, its memory. A service whose container is gone, or whose engine does not
        answer, is reported stopped."""
        record = self._record()
        if record is None:
            return {}
        endpoints = self.endpoints()
        urls = endpoints["services"] if endpoints else {}
        found = {}
        try:
            with _engine(record["engine"]) as client:
                containers = self._containers(client)
                for name in SERVICES:
                    container = containers.get(name)
                    if container is None and name not in urls:
                        continue
                    url = urls.get(name, "")
                    running = container is not None and container.status == "running"
                    found[name] = ServiceStatus(
                        name=name,
                        url=url,
                        pid=int(container.attrs["State"]["Pid"]) if container else 0,
                        running=running,
                        healthy=running and bool(url) and PROBES[name](url),
                        rss_mib=_memory_mib(container) if running else 0.0,
                        log=self.logs / f"{name}.log",
                    )
        except ENGINE_ERRORS:
            return {
                name: ServiceStatus(name, url, 0, False, False, 0.0, self.logs / f"{name}.log")
                for name, url in urls.items()
            }
        return found

    def _all_up(self, endpoints: Endpoints) -> bool:
        """Every service runs, except those that the faults keep down."""
        record = self._record()
        if record is None:
            return False
        try:
            with _engine(record["engine"]) as client:
                containers = self._containers(client)
        except ENGINE_ERRORS:
            return False
        return all(
            name in containers and containers[name].status == "running"
            for name in endpoints["services"]
            if name not in endpoints["down"]
        )

    @property
    def _selector(self) -> dict[str, str]:
        return {"label": f"{LABEL}={self.state}"}

    def _containers(self, client: Any) -> dict[str, Any]:
        """This data plane's containers by service."""
        listed = client.containers.list(all=True, filters=self._selector)
        return {c.labels.get(SERVICE_LABEL): c for c in listed}

    def _record(self) -> dict[str, str] | None:
        if not self.record_file.is_file():
            return None
        return dict(json.loads(self.record_file.read_text()))


@contextmanager
def _engine(engine: str) -> Iterator[Any]:
    """A docker-py client of the engine (DOCKER_HOST form), closed afterwards."""
    client = docker.DockerClient(base_url=engine, timeout=ENGINE_TIMEOUT_S)
    try:
        yield client
    finally:
        client.close()


def _memory_mib(container: Any) -> float:
    try:
        stats = container.stats(stream=False, one_shot=True)
    except ENGINE_ERRORS:  # memory is a detail of the status: never a reason to fail it
        return 0.0
    return float(stats.get("memory_stats", {}).get("usage", 0)) / 2**20
