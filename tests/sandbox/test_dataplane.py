"""The local data plane: real Milvus, LLM, embeddings, Llama Stack, S3 and docling-serve on
loopback, wired together; faults that reproduce incidents; a clean stop."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import llama_stack_client
import psutil
import pytest
from llama_stack_client import InternalServerError, LlamaStackClient
from pymilvus import MilvusClient

from stagecheck.config import load_settings
from stagecheck.engine import dataplane, docling, versions
from stagecheck.engine.endpoints import Endpoint
from stagecheck.engine.outcome import StepFailure
from stagecheck.engine.runs import Journal, data_plane_name
from stagecheck.errors import CannotRunHere
from stagecheck.kube.client import Kube
from stagecheck.sandbox.controlplane import free_ports
from stagecheck.sandbox.dataplane import (
    DOCLING_OFFLINE_OPTIONS,
    EMBEDDING_DIMENSION,
    MILVUS_PROVIDER,
    DataPlane,
    DataPlaneError,
    Endpoints,
)
from stagecheck.sandbox.dataplane.probes import answers_http
from tests.support import ROOT

CACHE = load_settings(root=ROOT).cache_dir  # the built environments, shared with every run
ZORBIA = "The capital of Zorbia is Quandel. Zorbia exports blue cheese and violins."
TIDES = "Tides are caused mainly by the gravitational pull of the Moon on the oceans."


def listening(pids: list[int]) -> set[tuple[str, int]]:
    return {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.pid in pids
    }


def assert_nothing_left(pids: list[int], ports: set[int]) -> None:
    alive = [
        p
        for p in pids
        if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    ]
    assert not alive, f"processes left running: {alive}"
    still = {
        c.laddr.port for c in psutil.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN
    }
    assert not ports & still, f"ports still listening: {sorted(ports & still)}"


def port_of(url: str) -> int:
    return int(url.split(":")[2].split("/")[0])


SYSTEM_TEMP = Path("/tmp")  # where weed and others write unless told otherwise


@pytest.fixture(scope="module")
def system_temp_before() -> set[str]:
    """What the system temp dir holds before the shared data plane starts."""
    return set(os.listdir(SYSTEM_TEMP))


@pytest.fixture(scope="module")
def caller_temp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The TMPDIR of the command that starts the shared data plane."""
    return tmp_path_factory.mktemp("caller-tmp")


@pytest.fixture(scope="module")
def plane(
    tmp_path_factory: pytest.TempPathFactory, system_temp_before: set[str], caller_temp: Path
) -> Iterator[DataPlane]:
    """Started by the command line in a process of its own, as `up` is: the services must
    outlive it, and this process must find and stop them."""
    sandbox = tmp_path_factory.mktemp("sandbox")
    env = {
        **os.environ,
        "STAGECHECK_CACHE": str(CACHE),
        "STAGECHECK_SANDBOX_DIR": str(sandbox),
        "TMPDIR": str(caller_temp),
    }
    up = subprocess.run(
        [sys.executable, "-m", "stagecheck.sandbox.dataplane", "up"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    data_plane = DataPlane(CACHE, sandbox / "dataplane")
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        yield data_plane
    finally:
        data_plane.stop()


@pytest.fixture(scope="module")
def endpoints(plane: DataPlane) -> Endpoints:
    found = plane.endpoints()
    assert found is not None
    return found


@pytest.fixture(scope="module")
def stack(endpoints: Endpoints) -> Iterator[LlamaStackClient]:
    client = LlamaStackClient(base_url=endpoints["services"]["llamastack"], timeout=60)
    try:
        yield client
    finally:
        client.close()


# -- faults first, each on its own short-lived data plane, before the shared one starts ------


def test_llm_unreachable_leaves_llama_stack_up_listing_a_model_it_cannot_serve(
    tmp_path: Path,
) -> None:
    faulty = DataPlane(CACHE, tmp_path)
    try:
        endpoints = faulty.start({"llm-unreachable"})
        wired = endpoints["llamastack_wiring"]["vllm-inference"]
        assert wired != endpoints["services"]["llm"]
        assert httpx.get(f"{endpoints['services']['llm']}/models").status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{wired}/models")
        # Llama Stack 0.7.3 starts, keeps the statically registered model listed, logs the
        # failed model refresh, and answers inference with HTTP 500.
        assert endpoints["down"] == {}
        assert endpoints["llama_stack_version"] == "0.7.3"
        with LlamaStackClient(
            base_url=endpoints["services"]["llamastack"], max_retries=0
        ) as client:
            assert endpoints["models"]["llm"] in {m.id for m in client.models.list()}
            with pytest.raises(InternalServerError):
                client.chat.completions.create(
                    model=endpoints["models"]["llm"],
                    messages=[{"role": "user", "content": "hi"}],
                    max_tokens=5,
                )
        log = (tmp_path / "logs" / "llamastack.log").read_text()
        assert "list_provider_model_ids() failed" in log and "Connection error" in log
    finally:
        pids = faulty.pids()
        ports = {port_of(url) for url in faulty_urls(faulty)}
        assert faulty.stop()
        assert_nothing_left(pids, ports)


def test_milvus_down_stops_llama_stack_at_start_up(tmp_path: Path) -> None:
    faulty = DataPlane(CACHE, tmp_path)
    try:
        endpoints = faulty.start({"milvus-down"})
        assert endpoints["faults"] == ["milvus-down"]
        assert set(endpoints["down"]) == {"milvus", "llamastack"}
        reason = endpoints["down"]["llamastack"]
        # The exit code is there when this process reaps it first; init may reap it before.
        assert "did not come up: it exited" in reason and "MilvusException" in reason
        assert str(tmp_path / "logs" / "llamastack.log") in reason
        assert endpoints["llama_stack_version"] is None
        status = faulty.status()
        # Milvus was started, and its process exited as it started: nothing runs for it.
        assert not status["milvus"].running and faulty.supervisor.exit_code("milvus") == 1
        assert "storage-is-a-file" in status["milvus"].log.read_text()
        assert not status["llamastack"].running
        assert status["llm"].healthy and status["embeddings"].healthy
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{endpoints['services']['llamastack']}/v1/health")
        # A second start with the same faults keeps what runs.
        pids = faulty.pids()
        assert faulty.start({"milvus-down"}) == endpoints
        assert faulty.pids() == pids
    finally:
        faulty.stop()


def faulty_urls(plane: DataPlane) -> list[str]:
    return [status.url for status in plane.status().values()]


def test_a_service_that_does_not_come_up_is_named_with_its_log(tmp_path: Path) -> None:
    broken = DataPlane(CACHE, tmp_path)
    script = "print('loading model'); print('fatal: no such model file'); raise SystemExit(3)"
    broken.supervisor.launch("llm", "http://127.0.0.1:1/v1", [sys.executable, "-c", script], {})
    with pytest.raises(DataPlaneError) as raised:
        broken.supervisor.await_ready("llm", lambda: False, timeout=60)
    message = str(raised.value)
    assert message.startswith("llm did not come up: it exited (code 3)")
    assert "last log line: fatal: no such model file" in message
    assert str(tmp_path / "logs" / "llm.log") in message
    assert "loading model" in message  # the tail of the log is attached
    assert broken.stop()
    assert broken.pids() == []


def test_each_service_gets_a_temp_dir_of_its_own_under_the_state_dir(tmp_path: Path) -> None:
    plane = DataPlane(CACHE, tmp_path / "dataplane")
    script = "import tempfile; print(tempfile.gettempdir())"
    plane.supervisor.launch("llm", "http://127.0.0.1:1/v1", [sys.executable, "-c", script], {})
    with pytest.raises(DataPlaneError, match="it exited"):
        plane.supervisor.await_ready("llm", lambda: False, timeout=30)
    told = (plane.logs / "llm.log").read_text().strip()
    assert told == str(tmp_path / "dataplane" / "tmp" / "llm")
    assert plane.stop()
    assert not (tmp_path / "dataplane" / "tmp").exists()


def test_heal_restarts_a_dead_service_on_its_own_port(tmp_path: Path) -> None:
    """The supervisor's restart path, on a small stand-in process recorded as the kfp service
    (probed as kfp is: any HTTP answer): killed, it is reported not running, and heal starts
    it again with the same command on the same port; a service that answers is left alone."""
    plane = DataPlane(CACHE, tmp_path)
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    plane.supervisor.launch("kfp", url, argv, {})
    try:
        plane.supervisor.await_ready("kfp", lambda: answers_http(url), timeout=30)
        first = plane.status_of("kfp")
        assert first is not None and first.healthy
        assert plane.heal() == []
        os.killpg(first.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while plane.pids() and time.monotonic() < deadline:
            time.sleep(0.1)
        dead = plane.status_of("kfp")
        assert dead is not None and not dead.running and not dead.healthy
        assert plane.heal() == ["kfp"]
        again = plane.status_of("kfp")
        assert again is not None and again.healthy and again.pid != first.pid
        assert again.url == url and answers_http(url)
    finally:
        assert plane.stop()
    assert not answers_http(url)


def test_unknown_fault_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataPlaneError, match="unknown fault"):
        DataPlane(CACHE, tmp_path).start({"disk-full"})


# -- the shared data plane -------------------------------------------------------------------


def test_endpoints_file_holds_what_start_returned(plane: DataPlane, endpoints: Endpoints) -> None:
    assert json.loads(plane.endpoints_file.read_text()) == endpoints
    services = {"milvus", "llm", "embeddings", "llamastack", "s3", "docling", "kfp"}
    assert set(endpoints["services"]) == services
    assert endpoints["faults"] == [] and endpoints["down"] == {}
    assert endpoints["models"]["llm"] == "vllm-inference/smollm2-135m"
    assert endpoints["models"]["embedding"] == "embeddings/all-MiniLM-L6-v2"
    assert endpoints["llamastack_wiring"]["vllm-inference"] == endpoints["services"]["llm"]


def test_services_listen_on_loopback_only(plane: DataPlane, endpoints: Endpoints) -> None:
    addresses = listening(plane.pids())
    assert {port for _, port in addresses} >= {
        port_of(url) for url in endpoints["services"].values()
    }
    assert {ip for ip, _ in addresses} <= {"127.0.0.1", "::ffff:127.0.0.1"}
    assert all(s.healthy for s in plane.status().values()), plane.status()


def test_start_again_keeps_the_running_services(plane: DataPlane, endpoints: Endpoints) -> None:
    pids = plane.pids()
    assert plane.start() == endpoints
    assert plane.pids() == pids


def test_milvus_round_trip(endpoints: Endpoints) -> None:
    client = MilvusClient(uri=endpoints["services"]["milvus"], timeout=10)
    name = f"roundtrip_{uuid.uuid4().hex[:8]}"
    try:
        client.create_collection(name, dimension=EMBEDDING_DIMENSION, metric_type="COSINE")
        vectors = [[math.sin(i * (k + 1)) for k in range(EMBEDDING_DIMENSION)] for i in range(3)]
        client.insert(name, [{"id": i, "vector": v} for i, v in enumerate(vectors)])
        hits = client.search(name, data=[vectors[2]], limit=1)
        assert hits[0][0]["id"] == 2
    finally:
        client.drop_collection(name)
        assert name not in client.list_collections()
        client.close()


def test_llm_lists_its_model_and_answers(endpoints: Endpoints) -> None:
    base = endpoints["services"]["llm"]
    models = httpx.get(f"{base}/models").json()["data"]
    assert [m["id"] for m in models] == [endpoints["models"]["llm_served"]]
    answer = httpx.post(
        f"{base}/chat/completions",
        json={
            "model": endpoints["models"]["llm_served"],
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "temperature": 0,
            "max_tokens": 24,
        },
        timeout=60,
    ).json()
    assert answer["choices"][0]["message"]["content"].strip()


def test_llm_lists_its_models_while_it_generates_and_finishes_the_generation(
    endpoints: Endpoints,
) -> None:
    """As vLLM does: a call during a streamed generation neither waits for it nor cuts it short
    (llama-cpp-python's own server does both; the mesh probe lists the models while another
    worker's scenario generates)."""
    base, model = endpoints["services"]["llm"], endpoints["models"]["llm_served"]
    request = {
        "model": model,
        "messages": [{"role": "user", "content": "Tell a long story about a lighthouse."}],
        "max_tokens": 200,
        "stream": True,
    }
    finish, listed_while_streaming = None, False
    with httpx.stream("POST", f"{base}/chat/completions", json=request, timeout=120) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line.removeprefix("data: "))["choices"][0]
            if not listed_while_streaming:  # the first token is out: list the models now
                models = httpx.get(f"{base}/models", timeout=5).json()["data"]
                assert [m["id"] for m in models] == [model]
                listed_while_streaming = True
            finish = chunk.get("finish_reason") or finish
    assert listed_while_streaming
    assert finish in ("length", "stop"), finish


def test_embeddings_are_384_floats_that_carry_meaning(endpoints: Endpoints) -> None:
    response = httpx.post(
        f"{endpoints['services']['embeddings']}/embeddings",
        json={
            "model": endpoints["models"]["embedding_served"],
            "input": ["Where is Quandel?", ZORBIA, TIDES],
        },
        timeout=60,
    ).json()
    query, near, far = (item["embedding"] for item in response["data"])
    assert len(query) == EMBEDDING_DIMENSION and all(isinstance(x, float) for x in query)

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True)) / math.prod(
            math.sqrt(sum(x * x for x in v)) for v in (a, b)
        )

    assert cosine(query, near) > cosine(query, far)


def test_llama_stack_is_healthy_and_talks_to_this_client(
    endpoints: Endpoints, stack: LlamaStackClient
) -> None:
    base = endpoints["services"]["llamastack"]
    assert httpx.get(f"{base}/v1/health").json() == {"status": "OK"}
    assert stack.inspect.version().version == endpoints["llama_stack_version"] == "0.7.3"


def test_llama_stack_lists_the_llm_and_the_embedding_model(
    endpoints: Endpoints, stack: LlamaStackClient
) -> None:
    models = {m.id: m for m in stack.models.list()}
    assert endpoints["models"]["llm"] in models
    embedding = models[endpoints["models"]["embedding"]]
    assert embedding.custom_metadata is not None
    assert embedding.custom_metadata["model_type"] == "embedding"
    assert embedding.custom_metadata["embedding_dimension"] == EMBEDDING_DIMENSION


def test_rag_round_trip_through_llama_stack_into_milvus(
    endpoints: Endpoints, stack: LlamaStackClient
) -> None:
    milvus = MilvusClient(uri=endpoints["services"]["milvus"], timeout=10)
    before = set(milvus.list_collections())
    store = stack.vector_stores.create(
        name="stagecheck-rag",
        extra_body={
            "provider_id": MILVUS_PROVIDER,
            "embedding_model": endpoints["models"]["embedding"],
            "embedding_dimension": EMBEDDING_DIMENSION,
        },
    )
    files = [
        stack.files.create(
            file=(name, io.BytesIO(text.encode()), "text/plain"), purpose="assistants"
        )
        for name, text in (("zorbia.txt", ZORBIA), ("tides.txt", TIDES))
    ]
    try:
        for file in files:
            attached = stack.vector_stores.files.create(vector_store_id=store.id, file_id=file.id)
            deadline = time.monotonic() + 60
            while attached.status == "in_progress" and time.monotonic() < deadline:
                time.sleep(0.2)
                attached = stack.vector_stores.files.retrieve(
                    vector_store_id=store.id, file_id=file.id
                )
            assert attached.status == "completed", attached.last_error
        # The chunks live in the Milvus server, not in some in-process fallback.
        assert set(milvus.list_collections()) - before
        found = stack.vector_stores.search(
            vector_store_id=store.id, query="What is the capital city of Zorbia?"
        )
        top = found.data[0]
        assert top.file_id == files[0].id
        assert "Quandel" in top.content[0].text
    finally:
        stack.vector_stores.delete(vector_store_id=store.id)
        for file in files:
            stack.files.delete(file_id=file.id)
        milvus.close()


def test_the_services_versions_and_models_are_checked_as_the_steps_say(
    endpoints: Endpoints,
) -> None:
    """Milvus and Llama Stack at a version or later (compared as versions), and a model the
    model server lists by name: each green on the real servers, and red saying what was found."""
    milvus = Endpoint("milvus", endpoints["services"]["milvus"], False, "sandbox")
    found = dataplane.milvus_version(milvus)
    assert versions.require_at_least("Milvus", found, "2.0") == found
    with pytest.raises(
        StepFailure, match=rf"expected version 99 or later\n\s+actual:\s+version {re.escape(found)}"
    ):
        versions.require_at_least("Milvus", found, "99")
    stack = dataplane.LlamaStack(
        Endpoint("llama-stack", endpoints["services"]["llamastack"], False, "x")
    )
    assert versions.require_at_least(stack.subject, stack.healthy(), "0.7") == "0.7.3"
    with pytest.raises(StepFailure, match="expected version 0.8 or later"):
        versions.require_at_least(stack.subject, stack.healthy(), "0.8")
    model = Endpoint("model", endpoints["services"]["llm"], False, "sandbox")
    dataplane.model_listed(model, endpoints["models"]["llm_served"])
    with pytest.raises(StepFailure, match="model mistral-24b-quantized to be served"):
        dataplane.model_listed(model, "mistral-24b-quantized")


DEAD_RUN, LIVE_RUN = "run-20260101-000000-dead", "run-20260101-000000-beef"


def test_data_plane_leftovers_of_dead_runs_are_swept_and_live_runs_kept(
    endpoints: Endpoints, stack: LlamaStackClient, kube: Kube
) -> None:
    """A round trip or a RAG scenario killed outright leaves a collection or a vector store
    whose name carries its run id: the next run that writes there removes those of runs with
    no live lease (with a vector store's files), and keeps those of a live one."""
    told: list[str] = []
    live = Journal(kube, "default", LIVE_RUN, tell=told.append)
    live.hold()  # the other run, alive: its lease is renewed
    journal = Journal(kube, "default", "run-20260101-000000-0001", tell=told.append)
    milvus = MilvusClient(uri=endpoints["services"]["milvus"], timeout=10)
    names = {run: data_plane_name(run, "_") for run in (DEAD_RUN, LIVE_RUN)}
    file = stack.files.create(file=("left.txt", io.BytesIO(b"left"), "text/plain"),
                              purpose="assistants")  # fmt: skip
    stores = {
        run: stack.vector_stores.create(
            name=data_plane_name(run),
            extra_body={
                "provider_id": MILVUS_PROVIDER,
                "embedding_model": endpoints["models"]["embedding"],
                "embedding_dimension": EMBEDDING_DIMENSION,
            },
        )  # fmt: skip
        for run in (DEAD_RUN, LIVE_RUN)
    }
    stack.vector_stores.files.create(vector_store_id=stores[DEAD_RUN].id, file_id=file.id)
    try:
        for name in names.values():
            milvus.create_collection(name, dimension=8)
        milvus_at = Endpoint("milvus", endpoints["services"]["milvus"], False, "sandbox")
        dataplane.sweep_milvus(milvus, journal, milvus_at)
        left = set(milvus.list_collections())
        assert names[DEAD_RUN] not in left and names[LIVE_RUN] in left
        llama_stack_at = Endpoint("llama-stack", endpoints["services"]["llamastack"], False, "x")
        dataplane.LlamaStack(llama_stack_at).sweep(journal)
        kept = {s.id for s in stack.vector_stores.list()}
        assert stores[DEAD_RUN].id not in kept and stores[LIVE_RUN].id in kept
        assert file.id not in {f.id for f in stack.files.list()}
        assert any(f"run {DEAD_RUN} (no live lease) left {names[DEAD_RUN]}" in t for t in told)
        assert any(stores[DEAD_RUN].name in t and t.endswith("removed") for t in told), told
        assert not any(LIVE_RUN in t for t in told), told
    finally:
        live.close()
        for name in names.values():
            milvus.drop_collection(name)
        for store in stores.values():
            with contextlib.suppress(llama_stack_client.APIStatusError):  # already swept
                stack.vector_stores.delete(vector_store_id=store.id)
        with contextlib.suppress(llama_stack_client.APIStatusError):  # already swept
            stack.files.delete(file_id=file.id)
        milvus.close()


def convert_html(base_url: str, html: str, options: dict[str, str]) -> httpx.Response:
    source = {
        "kind": "file",
        "filename": "zorbia.html",
        "base64_string": base64.b64encode(html.encode()).decode(),
    }
    return httpx.post(
        f"{base_url}/v1/convert/source",
        json={"sources": [source], "options": {"to_formats": ["md"], **options}},
        timeout=60,
    )


def test_docling_is_healthy_and_converts_a_small_html_document(endpoints: Endpoints) -> None:
    base = endpoints["services"]["docling"]
    assert httpx.get(f"{base}/health").json() == {"status": "ok"}
    assert httpx.get(f"{base}/version").json()["docling-serve"] == "1.38.2"
    html = f"<html><body><h1>Zorbia</h1><p>{ZORBIA}</p><ul><li>violins</li></ul></body></html>"
    response = convert_html(base, html, DOCLING_OFFLINE_OPTIONS)
    assert response.status_code == 200, response.text
    converted = response.json()
    assert converted["status"] == "success", converted["errors"]
    assert converted["document"]["filename"] == "zorbia.html"
    assert converted["document"]["md_content"] == f"# Zorbia\n\n{ZORBIA}\n\n- violins"


def test_docling_without_the_offline_options_needs_model_weights(
    plane: DataPlane, endpoints: Endpoints
) -> None:
    """Why DOCLING_OFFLINE_OPTIONS exists: the standard PDF pipeline is built even for HTML, and
    its layout weights are not to be had. Once a plain request converts, drop the options."""
    response = convert_html(endpoints["services"]["docling"], "<p>Quandel</p>", {})
    assert response.status_code == 404  # the failed task leaves no result to return
    log = (plane.logs / "docling.log").read_text()
    assert "docling-layout-heron" in log and "outgoing traffic has been disabled" in log


def test_the_docling_steps_pass_with_the_options_and_explain_a_failed_task(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    """The engine behind the Docling steps, against the real server: green with the sandbox's
    options, red with the failed task's cause without them (the models it cannot load)."""
    server = Endpoint("docling", endpoints["services"]["docling"], True, "sandbox")
    page = tmp_path / "zorbia.html"
    page.write_text(f"<html><body><p>{ZORBIA}</p></body></html>")
    assert docling.healthy(server) == "1.38.2"
    options = {"docling_convert_options": json.dumps(DOCLING_OFFLINE_OPTIONS)}
    assert "Quandel" in docling.converts(server, options, page, "Quandel")
    with pytest.raises(StepFailure) as caught:
        docling.converts(server, {}, page, "Quandel")
    message = str(caught.value)
    assert "HTTP 404 from /v1/convert/source: Task result not found" in message, message
    assert "the conversion task failed inside the server" in message
    with pytest.raises(CannotRunHere, match="docling_convert = 'no'"):
        docling.converts(server, {"docling_convert": "no"}, page, "Quandel")


def test_the_pipelines_standin_answers_every_caller_without_a_token_with_401(
    endpoints: Endpoints,
) -> None:
    response = httpx.get(f"{endpoints['services']['kfp']}/apis/v2beta1/healthz")
    assert response.status_code == 401
    assert response.headers["server"].startswith("kfp-api-standin")


def status_command(plane: DataPlane) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STAGECHECK_CACHE": str(CACHE)}
    env["STAGECHECK_SANDBOX_DIR"] = str(plane.state.parent)
    return subprocess.run(
        [sys.executable, "-m", "stagecheck.sandbox.dataplane", "status"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_status_names_a_killed_service_and_heal_brings_it_back(
    plane: DataPlane, endpoints: Endpoints
) -> None:
    """A dead service is red in status (with its log), and the supervisor restarts it on its
    own port, so endpoints.json stays true; the others keep running as they were."""
    assert status_command(plane).returncode == 0
    assert all(c.check().healthy for c in plane.components())
    s3 = plane.status()["s3"]
    others = {n: s.pid for n, s in plane.status().items() if n != "s3"}
    os.killpg(s3.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while plane.status()["s3"].running and time.monotonic() < deadline:
        time.sleep(0.1)
    red = {c.name: c.check() for c in plane.components() if not c.check().healthy}
    assert set(red) == {"s3"}, red
    assert "its processes are gone" in red["s3"].detail and red["s3"].log == s3.log
    status = status_command(plane)
    assert status.returncode == 1 and "s3          stopped" in status.stdout, status.stdout

    assert plane.heal() == ["s3"]
    assert plane.status()["s3"].healthy and plane.status()["s3"].pid != s3.pid
    assert plane.status()["s3"].url == endpoints["services"]["s3"]
    assert {n: s.pid for n, s in plane.status().items() if n != "s3"} == others
    assert plane.heal() == []  # nothing else needed it
    assert "restarted by the supervisor" in s3.log.read_text()


@pytest.fixture(scope="module")
def seen_ports(plane: DataPlane, endpoints: Endpoints) -> set[int]:
    """Every port of the shared data plane, read while it runs: its URLs' and SeaweedFS's."""
    s3_argv = plane.supervisor.records()["s3"]["argv"]
    s3_ports = {int(a.rsplit("=", 1)[1]) for a in s3_argv if ".port" in a and a[-1].isdigit()}
    return {port_of(url) for url in endpoints["services"].values()} | s3_ports


def test_stop_leaves_no_process_and_no_port(
    plane: DataPlane, endpoints: Endpoints, seen_ports: set[int]
) -> None:
    """Runs last but one in this module: it stops the shared data plane."""
    weed_sockets = [Path(p) for p in plane.supervisor.records()["s3"]["leftovers"]]
    assert len(seen_ports) >= 14 and weed_sockets
    assert all(socket.exists() for socket in weed_sockets), "weed puts these in /tmp"
    pids = plane.pids()
    assert len(pids) >= 4
    assert plane.stop()
    assert_nothing_left(pids, {port_of(url) for url in endpoints["services"].values()})
    assert plane.endpoints() is None and plane.status() == {}
    assert not plane.stop()
    assert not [socket for socket in weed_sockets if socket.exists()]


def test_the_data_plane_left_nothing_in_the_system_temp_dir(
    plane: DataPlane, system_temp_before: set[str], caller_temp: Path, seen_ports: set[int]
) -> None:
    """Every service had a TMPDIR of its own under the state directory, and SeaweedFS its log
    and socket folders there; the gRPC sockets weed puts in /tmp whatever it is told are gone
    with it. Other processes write to /tmp too: only names of what ran here count (weed's logs,
    sockets named after this data plane's ports), and the caller's private TMPDIR."""
    assert plane.endpoints() is None, "runs after the stop"
    ports = {str(port) for port in seen_ports}
    new = set(os.listdir(SYSTEM_TEMP)) - system_temp_before
    ours = {
        name
        for name in new
        if name.startswith("weed.") or any(f"-{port}." in name for port in ports)
    }
    assert not ours, f"left in {SYSTEM_TEMP}: {sorted(ours)}"
    assert not list(caller_temp.iterdir()), "a service wrote to its caller's TMPDIR"
    assert not (plane.state / "tmp").exists(), "stop removes the services' temp dirs"
