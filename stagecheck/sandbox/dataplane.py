"""The local data plane: real services standing in for what an AI stage deploys, each a process
on loopback started from its own cached environment (built by scripts/build-dataplane).

    milvus      milvus-lite server (gRPC)                      stands in for Milvus standalone
    llm         llama-cpp-python serving SmolLM2-135M-Instruct  stands in for vLLM
    embeddings  all-MiniLM-L6-v2 behind OpenAI-style /v1/embeddings
    llamastack  Llama Stack server wired to the three above (remote::vllm, remote::openai,
                remote::milvus, inline::localfs files)
    s3          SeaweedFS                                       stands in for the artifact store
    docling     docling-serve, without model weights            converts HTML, Markdown, DOCX
    kfp         kfp-api-standin: NOT KFP; the pipelines API's healthz behind the route's token
                check, asked of the control plane (see stagecheck.sandbox.kfp_api_standin)

    python -m stagecheck.sandbox.dataplane prepare|up|down|status [--fault NAME]

The processes outlive the command that started them: their process groups, ports and URLs are
recorded in the state directory, logs go to <state>/logs/<service>.log, and ``down`` stops
exactly the process groups it recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired, TypedDict, cast

import httpx
import yaml

from stagecheck.errors import StagecheckError
from stagecheck.sandbox.controlplane import free_ports
from stagecheck.sandbox.standins.mesh_gate import gate_urls

# start order; stopped in reverse
SERVICES = ("milvus", "llm", "embeddings", "llamastack", "s3", "docling", "kfp")
FAULTS = frozenset({"milvus-down", "llm-unreachable"})
# Llama Stack's vLLM URL as the world's LlamaStackDistribution names it (VLLM_URL), called
# through the mesh gate bound to its pods when the stand-ins run one
MODEL_IN_CLUSTER = "http://mistral-24b-quantized-predictor.private-ai-demo.svc.cluster.local/v1"
LLAMA_STACK_PODS = "private-ai-demo/app=llama-stack"
LLM_MODEL = "smollm2-135m"  # the name the LLM server serves, as vLLM's --served-model-name
EMBEDDING_MODEL = "all-MiniLM-L6-v2"
EMBEDDING_DIMENSION = 384
VLLM_PROVIDER, EMBEDDINGS_PROVIDER, MILVUS_PROVIDER = "vllm", "embeddings", "milvus"
READY_TIMEOUT_S = {
    "milvus": 60.0,
    "llm": 60.0,
    "embeddings": 180.0,
    "llamastack": 120.0,
    "s3": 60.0,
    "docling": 120.0,
    "kfp": 30.0,
}
KFP_NAMESPACE, KFP_DSPA = "private-ai-demo", "dspa"  # the stage-2 world's DSPA
S3_ACCESS_KEY = "sandbox-dspa"  # the secret key is made anew at every start
# docling-jobkit builds the PDF pipeline before it converts any document, HTML too. The standard
# pipeline loads layout weights from the Hugging Face hub, out of reach here; a VLM pipeline whose
# model is a remote API (Ollama on localhost, never called for HTML, Markdown or DOCX) builds
# without weights. So a conversion in this sandbox sends these options as well.
DOCLING_OFFLINE_OPTIONS = {"pipeline": "vlm", "vlm_pipeline_model": "granite_vision_ollama"}
STOP_TIMEOUT_S = 5.0
LOG_TAIL_LINES = 30
PROJECT_ROOT = Path(__file__).resolve().parents[2]
EMBEDDINGS_SERVER = Path(__file__).resolve().with_name("embeddings_server.py")
# Variables of the calling interpreter that would make another environment import wrong code.
FOREIGN_PYTHON_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")


class DataPlaneError(StagecheckError):
    """A data-plane environment could not be built or a service did not come up."""


class Models(TypedDict):
    llm: str  # the id Llama Stack lists (provider_id/model)
    llm_served: str  # the id the LLM server itself lists
    embedding: str
    embedding_served: str
    embedding_dimension: int


class Endpoints(TypedDict):
    """The contents of ``endpoints.json``."""

    services: dict[str, str]  # service -> base URL (OpenAI-style ones end in /v1)
    models: Models
    llama_stack_version: str | None  # None when Llama Stack is down
    llamastack_wiring: dict[str, str]  # provider_id -> the URL Llama Stack was configured with
    faults: list[str]
    down: dict[str, str]  # service -> why it is not serving (only under faults)
    # Options every conversion on this docling-serve needs (see DOCLING_OFFLINE_OPTIONS).
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


class DataPlane:
    """The data plane whose environments live under ``cache_dir`` and whose running state
    (process records, endpoints, logs, data) lives in ``state_dir``."""

    def __init__(self, cache_dir: Path, state_dir: Path, root: Path = PROJECT_ROOT) -> None:
        self.cache, self.state, self.root = cache_dir, state_dir, root
        self.logs = state_dir / "logs"
        self.endpoints_file = state_dir / "endpoints.json"
        self.processes_file = state_dir / "processes.json"
        self._children: dict[int, subprocess.Popen[bytes]] = {}  # ours, to reap

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
        self, faults: Iterable[str] = frozenset(), defer_llamastack: bool = False
    ) -> Endpoints:
        """Start every service on free loopback ports, wait until each answers, write
        ``endpoints.json`` and return its contents. A data plane already running with the same
        faults is left as it is.

        ``milvus-down``: Milvus is not started (Llama Stack still points at its port).
        ``llm-unreachable``: Llama Stack's vLLM URL is a closed loopback port.
        Under a fault, a Llama Stack that does not come up is recorded in ``down`` instead of
        raising; any other service that does not come up is an error. ``defer_llamastack``:
        everything but Llama Stack, which ``start_llamastack`` starts once its pod exists."""
        wanted = sorted(set(faults))
        if unknown := set(wanted) - FAULTS:
            raise DataPlaneError(f"unknown fault(s) {sorted(unknown)}; known: {sorted(FAULTS)}")
        current = self.endpoints()
        if current is not None and current["faults"] == wanted and self._all_running(current):
            return current
        self.stop()
        environments = self.prepare()
        try:
            return self._start(environments, wanted, defer_llamastack)
        except BaseException:
            self.stop()  # a failed or interrupted start leaves nothing running
            raise

    def _start(
        self, envs: Mapping[str, Environment], faults: list[str], defer_llamastack: bool = False
    ) -> Endpoints:
        for stale in (self.state / "milvus", self.state / "llamastack", self.state / "docling"):
            shutil.rmtree(stale, ignore_errors=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        ports = free_ports(6)
        milvus_port, llm_port, embeddings_port, stack_port, docling_port, closed_port = ports
        s3_ports = free_ports(8)
        (kfp_port,) = free_ports(1)
        urls = {
            "milvus": f"http://127.0.0.1:{milvus_port}",
            "llm": f"http://127.0.0.1:{llm_port}/v1",
            "embeddings": f"http://127.0.0.1:{embeddings_port}/v1",
            "llamastack": f"http://127.0.0.1:{stack_port}",
            "s3": f"http://127.0.0.1:{s3_ports[0]}",
            "docling": f"http://127.0.0.1:{docling_port}",
            "kfp": f"http://127.0.0.1:{kfp_port}",
        }
        wiring = {
            VLLM_PROVIDER: (
                f"http://127.0.0.1:{closed_port}/v1" if "llm-unreachable" in faults else urls["llm"]
            ),
            EMBEDDINGS_PROVIDER: urls["embeddings"],
            MILVUS_PROVIDER: urls["milvus"],
        }
        down: dict[str, str] = {}
        loopback = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}

        if "milvus-down" in faults:
            down["milvus"] = "not started (fault milvus-down)"
        else:
            data = self.state / "milvus" / "data"
            data.mkdir(parents=True)
            self._launch(
                "milvus",
                urls["milvus"],
                [envs["milvus"].bin("milvus-lite"), "server", "--data-dir", str(data)]
                + ["--host", "127.0.0.1", "--port", str(milvus_port)],
                loopback,
            )
        self._launch(
            "llm",
            urls["llm"],
            [envs["llm"].bin("python"), "-m", "llama_cpp.server"]
            + ["--model", envs["llm"].facts["model"], "--model_alias", LLM_MODEL]
            + ["--host", "127.0.0.1", "--port", str(llm_port), "--n_ctx", "4096"]
            + ["--n_threads", str(min(2, os.cpu_count() or 1))],
            loopback,
        )
        self._launch(
            "embeddings",
            urls["embeddings"],
            [envs["embeddings"].bin("python"), str(EMBEDDINGS_SERVER)]
            + ["--model", envs["embeddings"].facts["model"], "--model-id", EMBEDDING_MODEL]
            + ["--host", "127.0.0.1", "--port", str(embeddings_port)],
            # The torch wheel is a CUDA build; there is no GPU to look for.
            {**loopback, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
            | {"CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false"},
        )
        # No one depends on docling-serve: it boots (about 15 s of imports) beside the others.
        self._start_docling(envs["docling"], urls["docling"], docling_port, loopback)
        # Llama Stack connects to Milvus and lists the models of its inference providers while
        # it starts: its upstreams must answer first.
        if "milvus" not in down:
            self._await("milvus", lambda: _milvus_answers(urls["milvus"]))
        self._await("llm", lambda: _lists_model(urls["llm"], LLM_MODEL))
        self._await("embeddings", lambda: _lists_model(urls["embeddings"], EMBEDDING_MODEL))

        self._start_s3(envs["s3"], urls["s3"], s3_ports, loopback)
        self._await("s3", lambda: _answers_http(urls["s3"]))
        self._await("docling", lambda: _docling_healthy(urls["docling"]))
        self._launch(
            "kfp",
            urls["kfp"],
            [sys.executable, "-m", "stagecheck.sandbox.kfp_api_standin", "--port", str(kfp_port)]
            # The control plane beside this data plane answers the route's token checks.
            + ["--kubeconfig", str(self.state.parent / "kubeconfig")]
            + ["--namespace", KFP_NAMESPACE, "--dspa", KFP_DSPA],
            {**loopback, "PYTHONPATH": str(self.root)},
        )
        self._await("kfp", lambda: _answers_http(urls["kfp"]))

        stack_dir = self.state / "llamastack"
        (stack_dir / "home").mkdir(parents=True)
        # Through the mesh (the gate bound to Llama Stack's pods) when the stand-ins run one
        gate = gate_urls(self.state.parent).get(LLAMA_STACK_PODS)
        if gate and "llm-unreachable" not in faults:
            wiring[VLLM_PROVIDER] = MODEL_IN_CLUSTER
            loopback = {**loopback, "HTTP_PROXY": gate, "http_proxy": gate}
        config = stack_dir / "run.yaml"
        config.write_text(yaml.safe_dump(llamastack_config(stack_dir / "data", stack_port, wiring)))
        endpoints = Endpoints(
            services=urls,
            models=planned_models(),
            llama_stack_version=envs["llamastack"].facts.get("llama_stack"),
            llamastack_wiring=wiring,
            faults=faults,
            down=down,
            docling_options=DOCLING_OFFLINE_OPTIONS,
        )
        self.endpoints_file.write_text(json.dumps(endpoints, indent=2) + "\n")
        launch = {
            "argv": [envs["llamastack"].bin("llama"), "stack", "run", str(config)]
            + ["--port", str(stack_port)],
            "env": {
                **loopback,
                "HOME": str(stack_dir / "home"),  # it keeps ~/.llama; not the user's
                "TIKTOKEN_CACHE_DIR": envs["llamastack"].facts["tiktoken_cache"],
                "LLAMA_STACK_LOG_WIDTH": "200",
            },
        }
        (stack_dir / "launch.json").write_text(json.dumps(launch))
        if defer_llamastack:
            return endpoints
        return self.start_llamastack(tolerate_down=bool(faults))

    def start_llamastack(self, tolerate_down: bool) -> Endpoints:
        """Llama Stack, as prepared by ``start`` (a real pod's process starts once the operator
        made its pod, and calls through its sidecar from then on). ``tolerate_down``: a
        Llama Stack that does not come up or list its models is recorded in ``down``."""
        endpoints = self.endpoints()
        if endpoints is None:
            raise DataPlaneError("the data plane is not started: no Llama Stack to start")
        record = self._records().get("llamastack")
        if record is not None and self._members(record):
            return endpoints
        launch = json.loads((self.state / "llamastack" / "launch.json").read_text())
        url = endpoints["services"]["llamastack"]
        self._launch("llamastack", url, list(launch["argv"]), dict(launch["env"]))
        version, models, why = settle_llamastack(
            url,
            ["down tolerated"] if tolerate_down else [],
            lambda: self._await("llamastack", lambda: _stack_healthy(url)),
            f"; log: {self.logs / 'llamastack.log'}",
        )
        down = dict(endpoints["down"])
        if why:
            down["llamastack"] = why
        endpoints["models"], endpoints["down"] = models, down
        endpoints["llama_stack_version"] = version or endpoints["llama_stack_version"]
        self.endpoints_file.write_text(json.dumps(endpoints, indent=2) + "\n")
        return endpoints

    @property
    def s3_credentials_file(self) -> Path:
        return self.state / "s3-credentials.json"

    def s3_credentials(self) -> dict[str, str]:
        """The artifact store's keys, for the sandbox to put in the DSPA's Secret."""
        return cast(dict[str, str], json.loads(self.s3_credentials_file.read_text()))

    def _start_s3(
        self, env: Environment, url: str, ports: list[int], extra_env: dict[str, str]
    ) -> None:
        """SeaweedFS with one identity whose keys only the sandbox knows (file mode 0600)."""
        s3, s3_grpc, master, master_grpc, volume, volume_grpc, filer, filer_grpc = ports
        data = self.state / "s3" / "data"
        shutil.rmtree(data.parent, ignore_errors=True)
        data.mkdir(parents=True)
        keys = {"access_key": S3_ACCESS_KEY, "secret_key": secrets.token_urlsafe(24)}
        self.s3_credentials_file.touch(mode=0o600)
        self.s3_credentials_file.write_text(json.dumps(keys))
        identity = {
            "name": "dspa",
            "credentials": [{"accessKey": keys["access_key"], "secretKey": keys["secret_key"]}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config = self.state / "s3" / "identities.json"
        config.touch(mode=0o600)
        config.write_text(json.dumps({"identities": [identity]}))
        self._launch(
            "s3",
            url,
            [env.bin("weed"), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}"]
            + [f"-master.port={master}", f"-master.port.grpc={master_grpc}"]
            + [f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}"]
            + [f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}"]
            + ["-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", f"-s3.config={config}"]
            + ["-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false"]
            + ["-volume.max=4"],
            extra_env,
        )

    def _start_docling(
        self, env: Environment, url: str, port: int, extra_env: dict[str, str]
    ) -> None:
        """docling-serve on loopback: no UI, no model loading at boot, no trace or metric export,
        no hub; its scratch files under the state directory."""
        scratch = self.state / "docling" / "scratch"
        scratch.mkdir(parents=True)
        self._launch(
            "docling",
            url,
            [env.bin("docling-serve"), "run", "--host", "127.0.0.1", "--port", str(port)],
            {
                **extra_env,
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "CUDA_VISIBLE_DEVICES": "",  # torch is a CUDA build; there is no GPU to look for
                "DOCLING_SERVE_ENABLE_UI": "false",
                "DOCLING_SERVE_LOAD_MODELS_AT_BOOT": "false",
                "DOCLING_SERVE_OTEL_ENABLE_TRACES": "false",
                "DOCLING_SERVE_OTEL_ENABLE_OTLP_METRICS": "false",
                "DOCLING_SERVE_SCRATCH_PATH": str(scratch),
                # For the VLM pipeline of DOCLING_OFFLINE_OPTIONS, whose API is never called.
                "DOCLING_SERVE_ENABLE_REMOTE_SERVICES": "true",
                # A synchronous conversion polls its task: each poll waits this long (default 2 s).
                "DOCLING_SERVE_SYNC_POLL_INTERVAL": "1",
            },
        )

    def _launch(self, name: str, url: str, argv: list[str], extra_env: dict[str, str]) -> None:
        env = {k: v for k, v in os.environ.items() if k not in FOREIGN_PYTHON_VARIABLES}
        env.update(PYTHONUNBUFFERED="1", **extra_env)
        with (self.logs / f"{name}.log").open("wb") as log:
            # A session of its own: the service outlives this process and stops as a group.
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.state,
                env=env,
                start_new_session=True,
            )
        self._children[process.pid] = process
        records = self._records()
        records[name] = {"pid": process.pid, "started": _start_ticks(process.pid), "url": url}
        self.processes_file.write_text(json.dumps(records, indent=2) + "\n")

    def _await(self, name: str, answers: Callable[[], bool]) -> None:
        timeout = READY_TIMEOUT_S[name]
        record = self._records()[name]
        deadline = time.monotonic() + timeout
        while True:
            if answers():
                return
            if not self._members(record):
                self._reap()
                code = self._exit_code(record["pid"])
                raise self._not_up(name, f"it exited{'' if code is None else f' (code {code})'}")
            if time.monotonic() > deadline:
                raise self._not_up(name, f"it did not answer within {timeout:.0f}s")
            time.sleep(0.25)

    def _not_up(self, name: str, why: str) -> DataPlaneError:
        log = self.logs / f"{name}.log"
        tail = _tail(log, LOG_TAIL_LINES)
        last = next((line.strip() for line in reversed(tail) if line.strip()), "(empty log)")
        return DataPlaneError(
            f"{name} did not come up: {why}; last log line: {last}; log: {log}\n"
            f"--- last {len(tail)} lines of {log} ---\n" + "\n".join(tail)
        )

    # -- stop -----------------------------------------------------------------------------

    def stop(self) -> bool:
        """Stop every recorded process group (SIGTERM, then SIGKILL after a few seconds) and
        wait until their ports are closed; False when nothing was recorded."""
        records = self._records()
        for name in reversed(SERVICES):
            if name in records:
                self._stop_group(records[name])
        ports = [int(record["url"].split(":")[2].split("/")[0]) for record in records.values()]
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while any(_listening(port) for port in ports) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.processes_file.unlink(missing_ok=True)
        self.endpoints_file.unlink(missing_ok=True)
        return bool(records)

    def _stop_group(self, record: Mapping[str, Any]) -> None:
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, STOP_TIMEOUT_S)):
            members = self._members(record)
            for pid in members:
                with suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while members and time.monotonic() < deadline:
                time.sleep(0.1)
                self._reap()
                members = self._members(record)
            if not members:
                return

    def _reap(self) -> None:
        for process in self._children.values():
            process.poll()

    def _exit_code(self, pid: int) -> int | None:
        process = self._children.get(pid)
        return None if process is None else process.poll()

    # -- state ----------------------------------------------------------------------------

    def endpoints(self) -> Endpoints | None:
        """What the running data plane serves, as written by ``start``; None when stopped."""
        if not self.endpoints_file.is_file():
            return None
        return cast(Endpoints, json.loads(self.endpoints_file.read_text()))

    def status(self) -> dict[str, ServiceStatus]:
        """Each recorded service: whether its processes run, whether it answers, its memory."""
        found = {}
        for name, record in self._records().items():
            members = self._members(record)
            url = str(record["url"])
            found[name] = ServiceStatus(
                name=name,
                url=url,
                pid=int(record["pid"]),
                running=bool(members),
                healthy=bool(members) and PROBES[name](url),
                rss_mib=sum(_rss_kib(pid) for pid in members) / 1024,
                log=self.logs / f"{name}.log",
            )
        return found

    def pids(self) -> list[int]:
        """Every live process of every recorded service (group leaders and their children)."""
        return [pid for record in self._records().values() for pid in self._members(record)]

    def _records(self) -> dict[str, dict[str, Any]]:
        if not self.processes_file.is_file():
            return {}
        return cast(dict[str, dict[str, Any]], json.loads(self.processes_file.read_text()))

    def _all_running(self, endpoints: Endpoints) -> bool:
        """Every service runs, except those that the faults keep down."""
        records = self._records()
        return bool(records) and all(
            self._members(record)
            for name, record in records.items()
            if name not in endpoints["down"]
        )

    def _members(self, record: Mapping[str, Any]) -> list[int]:
        """Live processes of the recorded group: same process group, started no earlier than
        its leader (so a reused PID is never taken for ours)."""
        self._reap()
        if record["started"] is None:  # gone before it could be recorded: nothing to match
            return []
        return _group_members(int(record["pid"]), int(record["started"]))


def planned_models() -> Models:
    """The model ids Llama Stack should list, before it has listed them."""
    return Models(
        llm=f"{VLLM_PROVIDER}/{LLM_MODEL}",
        llm_served=LLM_MODEL,
        embedding=f"{EMBEDDINGS_PROVIDER}/{EMBEDDING_MODEL}",
        embedding_served=EMBEDDING_MODEL,
        embedding_dimension=EMBEDDING_DIMENSION,
    )


def settle_llamastack(
    url: str, faults: Collection[str], await_ready: Callable[[], None], log_hint: str = ""
) -> tuple[str | None, Models, str | None]:
    """Wait for Llama Stack, then read its version and the ids it lists for the two models:
    (version, models, None). Under faults, a Llama Stack that does not come up or list them
    gives (None, models, why) instead of raising."""
    models = planned_models()
    try:
        await_ready()
        version, listed = _stack_facts(url)
        models["llm"] = _listed_id(listed, VLLM_PROVIDER, LLM_MODEL) or models["llm"]
        models["embedding"] = (
            _listed_id(listed, EMBEDDINGS_PROVIDER, EMBEDDING_MODEL) or models["embedding"]
        )
        if not faults and not {models["llm"], models["embedding"]} <= set(listed):
            raise DataPlaneError(
                f"Llama Stack at {url} is up but does not list both {models['llm']} and "
                f"{models['embedding']}; it lists {sorted(listed)}{log_hint}"
            )
    except DataPlaneError as error:
        if not faults:
            raise
        return None, models, str(error).split("\n", 1)[0]
    return version, models, None


def llamastack_config(data_dir: Path, port: int, wiring: Mapping[str, str]) -> dict[str, Any]:
    """A Llama Stack 0.7 run configuration over the local services, loopback only."""
    kv = {"backend": "kv_default"}
    sql = {"backend": "sql_default"}
    return {
        "version": 2,
        "distro_name": "stagecheck-sandbox",
        "apis": ["files", "inference", "responses", "tool_runtime", "vector_io"],
        "providers": {
            "inference": [
                {
                    "provider_id": VLLM_PROVIDER,
                    "provider_type": "remote::vllm",
                    "config": {
                        "base_url": wiring[VLLM_PROVIDER],
                        "api_token": "unused",
                        "max_tokens": 1024,
                    },
                },
                {
                    "provider_id": EMBEDDINGS_PROVIDER,
                    "provider_type": "remote::openai",
                    "config": {"base_url": wiring[EMBEDDINGS_PROVIDER], "api_key": "unused"},
                },
            ],
            "vector_io": [
                {
                    "provider_id": MILVUS_PROVIDER,
                    "provider_type": "remote::milvus",
                    "config": {
                        "uri": wiring[MILVUS_PROVIDER],
                        "token": "",
                        "persistence": {**kv, "namespace": "vector_io::milvus_remote"},
                    },
                }
            ],
            "files": [
                {
                    "provider_id": "localfs",
                    "provider_type": "inline::localfs",
                    "config": {
                        "storage_dir": str(data_dir / "files"),
                        "metadata_store": {**sql, "table_name": "files_metadata"},
                    },
                }
            ],
            "responses": [
                {
                    "provider_id": "builtin",
                    "provider_type": "inline::builtin",
                    "config": {
                        "persistence": {
                            "agent_state": {**kv, "namespace": "agents"},
                            "responses": {**sql, "table_name": "responses"},
                        }
                    },
                }
            ],
            "tool_runtime": [
                {"provider_id": "file-search", "provider_type": "inline::file-search"}
            ],
        },
        "storage": {
            "backends": {
                "kv_default": {"type": "kv_sqlite", "db_path": str(data_dir / "kvstore.db")},
                "sql_default": {"type": "sql_sqlite", "db_path": str(data_dir / "sql_store.db")},
            },
            "stores": {
                "metadata": {**kv, "namespace": "registry"},
                "inference": {**sql, "table_name": "inference_store"},
                "conversations": {**sql, "table_name": "openai_conversations"},
                "prompts": {**kv, "namespace": "prompts"},
                "connectors": {**kv, "namespace": "connectors"},
            },
        },
        "registered_resources": {
            "models": [
                {
                    "model_id": LLM_MODEL,
                    "provider_id": VLLM_PROVIDER,
                    "provider_model_id": LLM_MODEL,
                    "model_type": "llm",
                },
                {
                    "model_id": EMBEDDING_MODEL,
                    "provider_id": EMBEDDINGS_PROVIDER,
                    "provider_model_id": EMBEDDING_MODEL,
                    "model_type": "embedding",
                    "metadata": {"embedding_dimension": EMBEDDING_DIMENSION},
                },
            ]
        },
        "server": {"host": "127.0.0.1", "port": port},
        "vector_stores": {
            "default_provider_id": MILVUS_PROVIDER,
            "default_embedding_model": {
                "provider_id": EMBEDDINGS_PROVIDER,
                "model_id": EMBEDDING_MODEL,
            },
        },
    }


# -- probes: True when the service answers as itself ----------------------------------------


def _get_json(url: str) -> Any:
    try:
        response = httpx.get(url, timeout=3.0)
        return response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def _lists_model(base_url: str, model: str) -> bool:
    listed = _get_json(f"{base_url}/models")
    return isinstance(listed, dict) and model in {m.get("id") for m in listed.get("data", [])}


def _stack_healthy(base_url: str) -> bool:
    health = _get_json(f"{base_url}/v1/health")
    return isinstance(health, dict) and health.get("status") == "OK"


def _stack_facts(base_url: str) -> tuple[str | None, list[str]]:
    version = _get_json(f"{base_url}/v1/version") or {}
    listed = _get_json(f"{base_url}/v1/models") or {}
    return version.get("version"), [str(m.get("id")) for m in listed.get("data", [])]


def _listed_id(listed: list[str], provider_id: str, model: str) -> str | None:
    return next((i for i in listed if i in (f"{provider_id}/{model}", model)), None)


def _milvus_answers(uri: str) -> bool:
    if not _listening(int(uri.rsplit(":", 1)[1])):
        return False
    from pymilvus import MilvusClient  # slow to import; only needed here

    try:
        client = MilvusClient(uri=uri, timeout=3)
    except Exception:  # pymilvus raises MilvusException and grpc errors alike
        return False
    try:
        client.list_collections()
        return True
    except Exception:
        return False
    finally:
        client.close()


def _docling_healthy(base_url: str) -> bool:
    health = _get_json(f"{base_url}/health")
    return isinstance(health, dict) and health.get("status") == "ok"


def _answers_http(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return False
    return True


PROBES: dict[str, Callable[[str], bool]] = {
    "milvus": _milvus_answers,
    "llm": lambda url: _lists_model(url, LLM_MODEL),
    "embeddings": lambda url: _lists_model(url, EMBEDDING_MODEL),
    "llamastack": _stack_healthy,
    "s3": _answers_http,
    "docling": _docling_healthy,
    "kfp": _answers_http,  # without a token it answers 401, which is an answer
}


# -- processes (Linux /proc) ----------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name: state is [0], pgrp [2], start [19]."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def _group_members(pgid: int, started_not_before: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if (
            fields
            and fields[0] != "Z"
            and int(fields[2]) == pgid
            and int(fields[19]) >= started_not_before
        ):
            members.append(int(entry.name))
    return members


def _rss_kib(pid: int) -> int:
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path, lines: int) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line.rstrip() for line in text.splitlines()[-lines:]]


def main(argv: list[str] | None = None) -> int:
    from stagecheck.config import load_settings

    parser = argparse.ArgumentParser(prog="dataplane", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["prepare", "up", "down", "status"])
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT, help="the project checkout")
    parser.add_argument("--fault", action="append", default=[], choices=sorted(FAULTS))
    args = parser.parse_args(argv)
    settings = load_settings(root=args.root.resolve(), target_option="sandbox")
    plane = DataPlane(settings.cache_dir, settings.sandbox_dir / "dataplane", args.root.resolve())
    try:
        if args.command == "prepare":
            for env in plane.prepare().values():
                print(f"{env.name}: {env.path}")
        elif args.command == "up":
            started = time.monotonic()
            endpoints = plane.start(args.fault)
            print(json.dumps(endpoints, indent=2))
            print(f"data plane up in {time.monotonic() - started:.1f}s; {plane.endpoints_file}")
        elif args.command == "down":
            print("data plane stopped" if plane.stop() else "data plane was not running")
        else:
            found = plane.status()
            if not found:
                print("data plane is not running")
                return 1
            for s in found.values():
                state = "healthy" if s.healthy else "running" if s.running else "stopped"
                print(f"{s.name:<11} {state:<8} {s.url:<28} {s.rss_mib:7.0f} MiB  {s.log}")
    except (DataPlaneError, subprocess.CalledProcessError) as error:
        print(f"dataplane {args.command}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
