"""A red data-plane step carries the exchange it is about (method, URL without credentials,
status, time, a bounded body), and an answer that is not what the API sends (HTML from a login
page, JSON of another shape) is named as such, never a raw JSONDecodeError or KeyError. An
endpoint that let a call time out is not asked again; data-plane writes need --allow-writes."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from stagecheck.engine import dataplane, probe, urls
from stagecheck.engine.endpoints import Endpoint, Endpoints
from stagecheck.engine.evidence import MAX_BODY
from stagecheck.engine.kubernetes import Cluster
from stagecheck.engine.outcome import StepFailure
from stagecheck.engine.runs import Journal
from stagecheck.errors import Planned
from stagecheck.kube.client import Kube
from stagecheck.kube.discovery import Discovery
from tests.support import LocalHandler, local_http

ANSWERS = {
    "/html/v1/models": (200, b"<html><body>Log in to continue</body></html>"),
    "/shape/v1/models": (200, json.dumps({"models": ["m"]}).encode()),
    "/down/v1/models": (503, b"upstream connect error " + b"x" * (3 * MAX_BODY)),
    "/ok/v1/chat/completions": (200, json.dumps({"object": "error"}).encode()),
}


class Server(LocalHandler):
    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        status, body = ANSWERS[self.path]
        self.reply(body, status)

    do_POST = do_GET  # noqa: N815


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with local_http(Server) as port:
        yield f"http://admin:exchange-canary-77@127.0.0.1:{port}"


def endpoint(url: str) -> Endpoint:
    return Endpoint("model", url, verify_tls=False, how="explicit URL")


def test_an_html_answer_is_named_with_the_endpoint_and_what_came_back(base: str) -> None:
    with pytest.raises(StepFailure) as caught:
        dataplane.served_models(endpoint(f"{base}/html/v1"))
    message = str(caught.value)
    assert "HTTP 200 with a body that is not JSON" in message
    assert "Log in to continue" in message and "may not be the service's API" in message
    (seen,) = caught.value.evidence
    assert seen.text.startswith("GET http://127.0.0.1:")
    assert "/html/v1/models\n-> HTTP 200 OK in " in seen.text
    assert "exchange-canary-77" not in seen.text and "admin" not in seen.text


def test_json_of_another_shape_is_named(base: str) -> None:
    with pytest.raises(StepFailure, match="an answer without a data list of models"):
        dataplane.served_models(endpoint(f"{base}/shape/v1"))
    with pytest.raises(StepFailure, match=r"an answer without choices\[0\]\.message") as caught:
        dataplane.chat(endpoint(f"{base}/ok/v1"), "m", [{"role": "user", "content": "hi"}])
    assert "POST" in caught.value.evidence[0].text


def test_an_error_status_carries_a_bounded_body(base: str) -> None:
    with pytest.raises(StepFailure) as caught:
        dataplane.served_models(endpoint(f"{base}/down/v1"))
    assert "HTTP 503: upstream connect error" in str(caught.value)
    (seen,) = caught.value.evidence
    assert "-> HTTP 503 Service Unavailable" in seen.text
    assert f"({2 * MAX_BODY + len('upstream connect error ')} more characters)" in seen.text
    assert len(seen.text) < MAX_BODY + 300


def test_a_call_nobody_answers_says_what_was_asked_and_for_how_long() -> None:
    with pytest.raises(StepFailure) as caught:
        dataplane.served_models(endpoint("http://127.0.0.1:9/v1"))  # discard: nothing listens
    (seen,) = caught.value.evidence
    assert seen.text.startswith("GET http://127.0.0.1:9/v1/models\n-> no answer after ")
    assert "ConnectError" in seen.text


def test_a_call_through_a_tunnel_names_what_the_tunnel_said() -> None:
    class Tunnel:  # a PortForward's errors, as its connection threads record them
        errors = ["port-forward to pod ns/model-0 port 8080: connection refused"] * 2

    through = Endpoint("model", "http://127.0.0.1:9/v1", False, "port-forward", tunnel=Tunnel())  # type: ignore[arg-type]
    with pytest.raises(StepFailure) as caught:
        dataplane.served_models(through)
    assert str(caught.value).count("its tunnel: port-forward to pod ns/model-0 port 8080") == 1


class Silent(LocalHandler):
    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        time.sleep(3)  # accepts, never answers within the budget
        self.reply(b"{}")

    do_POST = do_GET  # noqa: N815


def test_an_endpoint_that_let_a_call_time_out_is_not_asked_again(kube: Kube) -> None:
    with local_http(Silent) as port:
        endpoints = {"model": f"http://127.0.0.1:{port}/v1"}
        target = replace(kube.target, endpoints=endpoints, endpoint_timeout_s=0.5)
        found = Endpoints(target, kube, Discovery(kube))
        started = time.monotonic()
        with pytest.raises(StepFailure, match="does not answer: ReadTimeout"):
            dataplane.served_models(found.resolve("model"))
        first = time.monotonic() - started
        with pytest.raises(StepFailure) as caught:  # another step, the same run
            dataplane.chat(found.resolve("model"), "m", [{"role": "user", "content": "hi"}])
        again = time.monotonic() - started - first
    assert 0.4 < first < 2.5 and again < 0.2, (first, again)
    assert "not asked: model endpoint" in str(caught.value)
    assert re.search(r"it did not answer GET /v1/models within \d+\.\d s", str(caught.value))


def test_a_plan_run_writes_nothing_to_the_services_nor_a_probe_pod(kube: Kube) -> None:
    """--plan on a target that allows writes (the sandbox): planned, never sent (these
    endpoints would not even answer, and no probe pod may appear)."""
    target = replace(kube.target, allow_writes=True, vars={"embedding_model": "e"})
    journal = Journal(kube, "private-ai-demo", "run-20260101-000000-0000", plan=True)
    milvus = Endpoint("milvus", "http://127.0.0.1:9", False, "explicit URL")
    with pytest.raises(Planned, match="would create a scratch collection at milvus endpoint"):
        dataplane.milvus_round_trip(milvus, target, journal)
    stack = dataplane.LlamaStack(Endpoint("llama-stack", "http://127.0.0.1:9", False, "URL"))
    with pytest.raises(Planned, match="would upload documents into a new vector store"):
        dataplane.rag_store(stack, target, {"doc.txt": "text"}, journal)
    with pytest.raises(Planned, match="would create a probe pod in private-ai-demo as rag"):
        probe.can_reach(kube, "private-ai-demo", "rag", "http://model:8080", journal, "curl")
    assert journal.problems == [] and not journal._held  # not even the lease


def test_data_plane_writes_are_planned_not_made_on_a_read_only_target(kube: Kube) -> None:
    """Before anything is sent (these endpoints would not even answer): the scenario is
    skipped saying what it would have written, as the probe's is."""
    target = replace(kube.target, allow_writes=False, vars={"embedding_model": "e"})
    journal = Journal(kube, "private-ai-demo", "run-20260101-000000-0000")
    with pytest.raises(Planned, match="would create a scratch collection at milvus endpoint"):
        milvus = Endpoint("milvus", "http://127.0.0.1:9", False, "explicit URL")
        dataplane.milvus_round_trip(milvus, target, journal)
    stack = dataplane.LlamaStack(Endpoint("llama-stack", "http://127.0.0.1:9", False, "URL"))
    with pytest.raises(Planned, match="upload documents into a new vector store .*--allow-writes"):
        dataplane.rag_store(stack, target, {"doc.txt": "text"}, journal)


class UnhealthyStack(LocalHandler):
    """Llama Stack's /v1/providers when it cannot reach its model server (the seed's fault)."""

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        health = {"status": "Error", "message": "Health check failed: All connection attempts"}
        providers = [
            {"api": "inference", "provider_id": "vllm-inference", "health": health},
            {"api": "vector_io", "provider_id": "milvus", "health": {"status": "OK"}},
        ]
        self.reply(json.dumps({"data": providers}).encode())


def test_a_question_to_a_stack_whose_model_is_unreachable_is_red_at_once(kube: Kube) -> None:
    target = replace(kube.target, vars={"model": "m"})
    with local_http(UnhealthyStack) as port:
        stack = dataplane.LlamaStack(
            Endpoint("llama-stack", f"http://127.0.0.1:{port}", False, "URL")
        )
        stack.search = lambda store, question: [("doc.txt", "text")]  # type: ignore[method-assign]

        def never(*args: object) -> str:
            raise AssertionError("asked although its inference provider is known to be down")

        stack.answer = never  # type: ignore[method-assign]
        rag = dataplane.RagExchange("store", {"doc.txt": "text"}, stack.subject)
        started = time.monotonic()
        with pytest.raises(StepFailure) as caught:
            dataplane.ask(rag, stack, target, Cluster(kube, "private-ai-demo"), "Who?")
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert (
        "not asked: Llama Stack's inference provider vllm-inference reports 'Error: Health"
        in message
    )
    assert "Llama Stack cannot reach the model server" in message  # the cause, as before


class StackWithoutItsModel(LocalHandler):
    """Llama Stack 0.7 as on the seed's incident: it lists the model, its provider reports no
    health ("Not Implemented"), and a completion fails with HTTP 500 (the model server is not
    reachable from its pod)."""

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        if self.path.startswith("/v1/models"):
            model = {"id": "vllm/m", "object": "model", "created": 0, "owned_by": "llama_stack"}
            self.reply(json.dumps({"data": [model]}).encode())
        else:
            health = {"status": "Not Implemented", "message": "no health check"}
            provider = {"api": "inference", "provider_id": "vllm", "health": health}
            self.reply(json.dumps({"data": [provider]}).encode())

    def do_POST(self) -> None:  # noqa: N802
        self.reply(json.dumps({"error": {"message": "Internal server error"}}).encode(), 500)


def test_a_question_to_a_model_that_already_failed_in_this_run_is_not_asked(kube: Kube) -> None:
    """Its provider does not say it is unhealthy; the run knows from the model check that a
    completion through it fails: the question is red at once instead of waiting out the
    provider's retries (6 s on the sandbox, and the server's log of them after)."""
    target = replace(kube.target, vars={"model": "vllm/m"})
    with local_http(StackWithoutItsModel) as port:
        stack = dataplane.LlamaStack(
            Endpoint("llama-stack", f"http://127.0.0.1:{port}", False, "URL")
        )
        with pytest.raises(StepFailure, match="is listed, but a completion through it fails"):
            stack.model_registered("m", None, lambda: None)
        stack.search = lambda store, question: [("doc.txt", "text")]  # type: ignore[method-assign]

        def never(*args: object) -> str:
            raise AssertionError("asked although a completion through the model already failed")

        stack.answer = never  # type: ignore[method-assign]
        rag = dataplane.RagExchange("store", {"doc.txt": "text"}, stack.subject)
        with pytest.raises(StepFailure) as caught:
            dataplane.ask(rag, stack, target, Cluster(kube, "private-ai-demo"), "Who?")
    assert (
        "not asked: model vllm/m: earlier in this run a one-token completion through it "
        "failed (HTTP 500)" in str(caught.value)
    )


class Pages(LocalHandler):
    starting = [503, 503]  # /starting answers 503 twice, then 200

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        if self.path == "/starting":
            self.reply(b"", Pages.starting.pop() if Pages.starting else 200)
        elif self.path == "/healthz":
            self.reply(b"ok")
        elif self.path == "/login":
            self.send_response(302)
            self.send_header("Location", "/sso")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.reply(b"upstream connect error", 503)


def test_a_url_answers_the_status_it_should_or_says_what_it_answered() -> None:
    with local_http(Pages) as port:
        base = f"http://127.0.0.1:{port}"
        urls.answers(f"{base}/healthz", 200, 5, None)
        with pytest.raises(StepFailure) as caught:
            urls.answers(f"{base}/down", 200, 5, None)
        assert "expected HTTP 200" in str(caught.value) and "actual:   HTTP 503" in str(
            caught.value
        )
        assert "upstream connect error" in caught.value.evidence[0].text
        with pytest.raises(StepFailure, match="HTTP 302"):  # a login redirect is not a 200
            urls.answers(f"{base}/login", 200, 5, None)
        with pytest.raises(StepFailure, match="actual:   HTTP 503"):
            urls.answers(f"{base}/starting", 200, 5, None)  # once: 503
        urls.answers(f"{base}/starting", 200, 5, 10.0)  # asked again until it answers 200
        with pytest.raises(StepFailure, match="no answer: ConnectError"):
            urls.answers("http://127.0.0.1:9/", 200, 5, 0.5)


class Starting(LocalHandler):
    """A model server still loading: 503 twice, then its model list."""

    answers = [503, 503]

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        if Starting.answers:
            self.reply(b"loading", Starting.answers.pop())
        else:
            self.reply(json.dumps({"data": [{"id": "m"}]}).encode())


def test_within_asks_a_starting_service_again_but_never_a_silent_one(kube: Kube) -> None:
    with local_http(Starting) as port:
        model = endpoint(f"http://127.0.0.1:{port}/v1")
        with pytest.raises(StepFailure, match="HTTP 503"):
            dataplane.model_listed(model, "m")  # once: still loading
        dataplane.within_budget(model, 30, lambda: dataplane.model_listed(model, "m"))
    with local_http(Silent) as port:
        target = replace(
            kube.target, endpoints={"model": f"http://127.0.0.1:{port}/v1"}, endpoint_timeout_s=0.5
        )
        silent = Endpoints(target, kube, Discovery(kube)).resolve("model")
        started = time.monotonic()
        with pytest.raises(StepFailure) as caught:
            dataplane.within_budget(silent, 60, lambda: dataplane.model_listed(silent, "m"))
    assert time.monotonic() - started < 10  # one budget of 0.5 s, not the step's 60 s
    assert caught.value.waited is not None
