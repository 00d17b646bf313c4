"""The data plane as local processes on loopback, each started from its own cached environment
(built by scripts/build-dataplane), following the service plan (``plan``, ``services``) and
kept by the supervisor (``supervisor``)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import cast

from stagecheck.sandbox.controlplane import free_ports
from stagecheck.sandbox.dataplane.models import Models
from stagecheck.sandbox.dataplane.plan import (
    LOOPBACK_ENV,
    PodConfig,
    ProcessContext,
    checked_faults,
    kept_down,
    schedule,
)
from stagecheck.sandbox.dataplane.records import (
    DataPlaneError,
    Endpoints,
    Environment,
    ServiceStatus,
)
from stagecheck.sandbox.dataplane.services import BY_NAME, PLAN, SERVICES, docling, llamastack, s3
from stagecheck.sandbox.dataplane.supervisor import Supervisor
from stagecheck.sandbox.health import Check, Component, Health

PROJECT_ROOT = Path(__file__).resolve().parents[3]


class DataPlane:
    """The data plane whose environments live under ``cache_dir`` and whose running state
    (process records, endpoints, logs, data, temporary files) lives in ``state_dir``."""

    def __init__(self, cache_dir: Path, state_dir: Path, root: Path = PROJECT_ROOT) -> None:
        self.cache, self.state, self.root = cache_dir, state_dir, root
        self.supervisor = Supervisor(state_dir)
        self.logs = self.supervisor.logs
        self.endpoints_file = state_dir / "endpoints.json"
        self.processes_file = self.supervisor.processes_file

    # -- environments ---------------------------------------------------------------------

    def prepare(self) -> dict[str, Environment]:
        """Build the environments that are missing (seconds when all are cached)."""
        script = self.root / "scripts" / "build-dataplane"
        env = {**os.environ, "STAGECHECK_CACHE": str(self.cache)}
        built = subprocess.run([str(script)], env=env, stdout=sys.stderr, check=False)
        if built.returncode != 0:
            raise DataPlaneError(f"{script} failed (exit {built.returncode}); its output is above")
        listed = subprocess.run(
            [str(script), "--print-envs"], env=env, capture_output=True, text=True, check=True
        )
        environments = {}
        for name, path in json.loads(listed.stdout).items():
            stamp = Path(path) / "stagecheck-env.json"
            if not stamp.is_file():
                raise DataPlaneError(f"environment {name} at {path} has no {stamp.name}")
            environments[name] = Environment(name, Path(path), json.loads(stamp.read_text()))
        return environments

    # -- start ----------------------------------------------------------------------------

    def start(
        self, faults: Iterable[str] = frozenset(), defer_configured: bool = False
    ) -> Endpoints:
        """Start every service on free loopback ports, wait until each answers, write
        ``endpoints.json`` and return its contents. A data plane already running with the same
        faults is left as it is; one whose services died or stopped answering gets those
        restarted (``heal``), or is started anew when that fails.

        ``milvus-down``: Milvus's process exits as it starts (its data folder cannot be made).
        ``llm-unreachable``: Llama Stack's vLLM URL is a closed loopback port.
        Under a fault, a Llama Stack that does not come up is recorded in ``down`` instead of
        raising; any other service that does not come up is an error. ``defer_configured``:
        the services a pod configures (the model server, Llama Stack) are prepared, not
        started: the data-plane kubelet starts each from its pod once the pod exists
        (``start_from_pod``), and ``await_configured`` waits for them."""
        wanted = checked_faults(faults)
        current = self.endpoints()
        if current is not None and current["faults"] == wanted and self.supervisor.records():
            if self._all_running(current):
                return current
            try:
                self.heal()
                return current
            except DataPlaneError:
                pass  # started anew below
        self.stop()
        environments = self.prepare()
        try:
            return self._start(environments, wanted, defer_configured)
        except BaseException:
            self.stop()  # a failed or interrupted start leaves nothing running
            raise

    def _start(
        self, envs: Mapping[str, Environment], faults: list[str], defer_configured: bool = False
    ) -> Endpoints:
        self.logs.mkdir(parents=True, exist_ok=True)
        down = kept_down(faults)
        allocated = iter(free_ports(sum(s.ports for s in PLAN) + 1))
        ports = {s.name: [next(allocated) for _ in range(s.ports)] for s in PLAN}
        closed = f"http://127.0.0.1:{next(allocated)}/v1"  # nothing listens there
        urls = {s.name: f"http://127.0.0.1:{ports[s.name][0]}{s.path}" for s in PLAN}
        keys = {"access_key": s3.ACCESS_KEY, "secret_key": secrets.token_urlsafe(24)}
        self.s3_credentials_file.touch(mode=0o600)
        self.s3_credentials_file.write_text(json.dumps(keys))
        wiring = llamastack.wiring(urls, faults, closed)
        context = ProcessContext(self.state, self.root, envs, ports, urls, wiring, keys, faults)
        self._write_context(context)
        deferred = {s.name for s in PLAN if defer_configured and s.from_pod is not None}
        settled: tuple[str | None, Models, str | None] | None = None
        for step, name in schedule(PLAN):
            service = BY_NAME[name]
            if name in deferred:
                if name == llamastack.NAME:
                    settled = (None, llamastack.planned_models(), None)
            elif step == "launch":
                spec = service.process(context)
                leftovers = s3.leftovers(ports[name]) if name == s3.NAME else []
                self.supervisor.launch(
                    name, urls[name], spec.argv, {**LOOPBACK_ENV, **spec.env}, leftovers
                )
            elif name in down:
                continue  # a fault's casualty: it is not waited for
            elif name == llamastack.NAME:
                settled = llamastack.settle_llamastack(
                    urls[name],
                    faults,
                    lambda: self._await(llamastack.NAME),
                    f"; log: {self.supervisor.log(name)}",
                )
            else:
                self._await(name)
        if settled is None:  # Llama Stack was a fault's casualty
            settled = (None, llamastack.planned_models(), down.get(llamastack.NAME))
        version, models, why = settled
        if why:
            down["llamastack"] = why
        endpoints = Endpoints(
            services={name: urls[name] for name in SERVICES},
            models=models,
            llama_stack_version=version,
            llamastack_wiring=dict(context.wiring),
            faults=faults,
            down=down,
            docling_options=docling.OFFLINE_OPTIONS,
        )
        self.endpoints_file.write_text(json.dumps(endpoints, indent=2) + "\n")
        return endpoints

    # -- services a pod configures --------------------------------------------------------

    @property
    def context_file(self) -> Path:
        return self.state / "context.json"

    def _write_context(self, ctx: ProcessContext) -> None:
        record = {
            "root": str(ctx.root),
            "envs": {n: {"path": str(e.path), "facts": dict(e.facts)} for n, e in ctx.envs.items()},
            "ports": dict(ctx.ports),
            "urls": dict(ctx.urls),
            "wiring": dict(ctx.wiring),
            "faults": list(ctx.faults),
        }
        self.context_file.write_text(json.dumps(record, indent=2) + "\n")

    def context(self) -> ProcessContext | None:
        """What ``start`` gave the recipes, for starting a service again from its pod (None
        when the data plane was not started)."""
        try:
            record = json.loads(self.context_file.read_text())
            keys = self.s3_credentials()
        except (OSError, ValueError):
            return None
        envs = {
            name: Environment(name, Path(e["path"]), e["facts"])
            for name, e in record["envs"].items()
        }
        return ProcessContext(
            self.state, Path(record["root"]), envs, record["ports"], record["urls"],
            record["wiring"], keys, tuple(record.get("faults") or ()),
        )  # fmt: skip

    def start_from_pod(self, name: str, pod: PodConfig, why: str) -> bool:
        """Start (or start again) the service a pod configures, as that pod's container would
        run: False when it already runs as this pod configures it."""
        service, ctx = BY_NAME[name], self.context()
        if service.from_pod is None or ctx is None:
            return False
        record = self.supervisor.records().get(name)
        fingerprint = pod.fingerprint()
        if (
            record is not None
            and record.get("pod") == fingerprint
            and self.supervisor.members(record)
        ):
            return False
        spec = service.from_pod(ctx, pod)
        env = {**LOOPBACK_ENV, **spec.env}
        if record is None:
            self.supervisor.launch(name, ctx.urls[name], spec.argv, env)
        else:
            self.supervisor.relaunch(name, spec.argv, env, why)
        self.supervisor.annotate(name, pod=fingerprint, pod_name=pod.pod)
        return True

    def await_configured(self, timeout_s: float, tolerate_down: bool) -> Endpoints:
        """Wait until the services a pod configures run and answer (the data-plane kubelet
        starts them once their pods exist), then record what Llama Stack lists.
        ``tolerate_down``: one that does not come up is recorded in ``down`` instead of
        raising (a fault's casualty)."""
        endpoints = self.endpoints()
        if endpoints is None:
            raise DataPlaneError("the data plane is not started: start it first")
        configured = [s for s in PLAN if s.from_pod is not None]
        deadline = time.monotonic() + timeout_s
        down = dict(endpoints["down"])
        for service in configured:
            url = endpoints["services"][service.name]
            while not (service.name in self.supervisor.records() and service.probe(url)):
                code = self.supervisor.exit_code(service.name)
                if time.monotonic() > deadline or code is not None:
                    why = self._not_up(service.name, timeout_s, code)
                    if not tolerate_down:
                        raise DataPlaneError(why)
                    down[service.name] = why.split("\n", 1)[0]
                    break
                time.sleep(0.25)
        if llamastack.NAME not in down:
            version, models, unsettled = llamastack.settle_llamastack(
                endpoints["services"][llamastack.NAME],
                ["tolerated"] if tolerate_down else [],
                lambda: None,
                f"; log: {self.supervisor.log(llamastack.NAME)}",
            )
            endpoints["llama_stack_version"], endpoints["models"] = version, models
            if unsettled:
                down[llamastack.NAME] = unsettled
        endpoints["down"] = down
        self.endpoints_file.write_text(json.dumps(endpoints, indent=2) + "\n")
        return endpoints

    def _not_up(self, name: str, timeout_s: float, code: int | None = None) -> str:
        if code is not None:
            return str(self.supervisor.not_up(name, f"it exited (code {code})"))
        if name not in self.supervisor.records():
            return (
                f"{name} was never started: no pod of the world configured it within "
                f"{timeout_s:.0f}s (the data-plane kubelet starts it from its pod)"
            )
        return str(self.supervisor.not_up(name, f"it did not answer within {timeout_s:.0f}s"))

    def _await(self, name: str) -> None:
        service = BY_NAME[name]
        url = self.supervisor.records()[name]["url"]
        self.supervisor.await_ready(name, lambda: service.probe(url), service.ready_timeout_s)

    @property
    def s3_credentials_file(self) -> Path:
        return self.state / "s3-credentials.json"

    def s3_credentials(self) -> dict[str, str]:
        """The artifact store's keys, for the sandbox to put in the DSPA's Secret."""
        return cast(dict[str, str], json.loads(self.s3_credentials_file.read_text()))

    # -- heal -----------------------------------------------------------------------------

    def heal(self) -> list[str]:
        """Restart every recorded service that is not running or does not answer its probe
        (except those a fault keeps down), in plan order, and wait until each answers; the
        names restarted. Each keeps its port, so endpoints.json stays true."""
        endpoints = self.endpoints()
        down = endpoints["down"] if endpoints else {}
        records = self.supervisor.records()
        restarted = []
        for name in SERVICES:
            if name not in records or name in down:
                continue
            url = records[name]["url"]
            if self.supervisor.members(records[name]) and BY_NAME[name].probe(url):
                continue
            self.supervisor.restart(name)
            self._await(name)
            restarted.append(name)
        return restarted

    # -- stop -----------------------------------------------------------------------------

    def stop(self) -> bool:
        """Stop every recorded process group (SIGTERM, then SIGKILL after a few seconds) and
        wait until their ports are closed; False when nothing was recorded."""
        stopped = self.supervisor.stop_all(tuple(reversed(SERVICES)))
        self.endpoints_file.unlink(missing_ok=True)
        return stopped

    # -- state ----------------------------------------------------------------------------

    def endpoints(self) -> Endpoints | None:
        """What the running data plane serves, as written by ``start``; None when stopped."""
        if not self.endpoints_file.is_file():
            return None
        return cast(Endpoints, json.loads(self.endpoints_file.read_text()))

    def status(self) -> dict[str, ServiceStatus]:
        """Each recorded service: whether its processes run, whether it answers, its memory."""
        found = {name: self.status_of(name) for name in self.supervisor.records()}
        return {name: status for name, status in found.items() if status is not None}

    def status_of(self, name: str) -> ServiceStatus | None:
        """One service's status; None when it is not recorded."""
        record = self.supervisor.records().get(name)
        if record is None:
            return None
        members = self.supervisor.members(record)
        url = str(record["url"])
        return ServiceStatus(
            name=name,
            url=url,
            pid=int(record["pid"]),
            running=bool(members),
            healthy=bool(members) and BY_NAME[name].probe(url),
            rss_mib=self.supervisor.rss_mib(record),
            log=self.supervisor.log(name),
        )

    def components(self) -> list[Component]:
        """Each service as a component of the sandbox, checked by its readiness probe; one
        that a fault keeps down is reported as such, and healthy (it is what was asked for)."""
        endpoints = self.endpoints()
        if endpoints is None:
            return [Check("data plane", lambda: Health(False, f"not running ({self.state})"))]
        return [
            Check(name, partial(self._health, name, endpoints["down"].get(name)))
            for name in SERVICES
            if name in endpoints["services"]
        ]

    def _health(self, name: str, kept_down_because: str | None) -> Health:
        if kept_down_because is not None:
            return Health(True, f"down, as the fault variant wants: {kept_down_because}")
        status = self.status_of(name)
        if status is None:
            return Health(False, "not recorded: it was never started")
        if not status.running:
            return Health(False, f"{status.url}: its processes are gone", status.log)
        if not status.healthy:
            return Health(False, f"{status.url}: runs but fails its readiness probe", status.log)
        return Health(True, f"{status.url} answers ({status.rss_mib:.0f} MiB)")

    def pids(self) -> list[int]:
        """Every live process of every recorded service (group leaders and their children)."""
        return self.supervisor.pids()

    def _all_running(self, endpoints: Endpoints) -> bool:
        """Every service runs, except those that the faults keep down."""
        records = self.supervisor.records()
        return bool(records) and all(
            self.supervisor.members(record)
            for name, record in records.items()
            if name not in endpoints["down"]
        )
