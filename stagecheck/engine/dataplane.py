"""Probes of the stage's data plane: Milvus stores and finds vectors, the model answers,
Llama Stack has the model and answers from ingested documents.

Each probe reaches its service through an Endpoint and fails with a StepFailure naming the
service, what was expected, what came back, and the likely cause. Whatever a probe creates
(scratch collections, vector stores, files) is removed before it returns, and carries the
run id in its name: where a run writes, what dead runs left there is swept first (``runs``).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import httpx

from stagecheck.config import Target
from stagecheck.engine import mesh
from stagecheck.engine.checks import container_names, pod_is_ready
from stagecheck.engine.endpoints import Endpoint, evidence_of, with_backend_evidence
from stagecheck.engine.evidence import exchange, unanswered
from stagecheck.engine.kubernetes import Cluster
from stagecheck.engine.llama_stack_stores import stores_cause
from stagecheck.engine.mesh import SIDECAR
from stagecheck.engine.outcome import Evidence, StepFailure, fail
from stagecheck.engine.runs import Journal, data_plane_name, sweep_named
from stagecheck.engine.wait import polled
from stagecheck.errors import (
    ConfigError,
    KubeApiError,
    Planned,
    SpecificationError,
    StagecheckError,
    UnknownKind,
)
from stagecheck.kube.client import JsonObject, Kube

if TYPE_CHECKING:
    from pymilvus import MilvusClient

# pymilvus (which loads pandas) and llama-stack-client are imported where they are first used,
# so a run whose features reach neither service starts without them (about a second).

T = TypeVar("T")
INGEST_TIMEOUT_S = 120
MILVUS_CONNECT_TIMEOUT_S = 10.0
RAG_SYSTEM_PROMPT = "Answer using only the context."  # measured stable with small models


RETRY_PAUSE_S = 2.0


def within_budget[R](endpoint: Endpoint, within: float | None, check: Callable[[], R]) -> R:
    """``check`` now, and with ``within`` again every few seconds while it fails, until it
    passes or the time is up (a service still starting: refused, 503, not listed yet). An
    endpoint found unresponsive is not asked again: waiting cannot make it answer sooner."""
    return polled(check, within, RETRY_PAUSE_S, hopeless=lambda: bool(endpoint.health.silent))


def refuse_if_silent(endpoint: Endpoint, subject: str, expected: str) -> None:
    """A red step at once for an endpoint that let a call time out earlier in the run: one
    silent service costs the run one budget, not one per scenario."""
    if endpoint.health.silent:
        raise fail(
            subject,
            expected,
            f"not asked: {endpoint.describe()} is unresponsive in this run "
            f"({endpoint.health.silent})",
            "the service accepts connections but does not answer; see the first red step on it",
        )


def _unreachable(endpoint: Endpoint, error: Exception) -> str:
    said = endpoint.tunnel_errors()
    tunnel = f"; its tunnel: {'; '.join(said)}" if said else ""
    return f"{endpoint.describe()} does not answer: {type(error).__name__}: {error}{tunnel}"


# -- Milvus -----------------------------------------------------------------------------------
@contextmanager
def milvus_client(endpoint: Endpoint) -> Iterator[MilvusClient]:
    """A client of the Milvus endpoint; a red step inside carries the pods behind it."""
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    subject = f"Milvus at {endpoint.url}"
    with evidence_of(endpoint):
        refuse_if_silent(endpoint, subject, "a Milvus server answering")
        started = time.monotonic()
        budget = min(MILVUS_CONNECT_TIMEOUT_S, endpoint.timeout_s)
        try:
            token = {"token": endpoint.token.value} if endpoint.token else {}
            client = MilvusClient(uri=endpoint.url, timeout=budget, **token)
        except MilvusException as error:
            waited = time.monotonic() - started
            if waited >= budget * 0.9:  # gRPC waited its whole budget for the channel
                endpoint.health.note_timeout("a connection", waited)
            raise fail(subject, "a Milvus server answering", _unreachable(endpoint, error),
                       "the Milvus pod or its Service/Route is down") from None  # fmt: skip
        try:
            yield client
        finally:
            client.close()


def milvus_version(endpoint: Endpoint) -> str:
    with milvus_client(endpoint) as client:
        return str(client.get_server_version())


def require_writes(target: Target, endpoint: Endpoint, what: str, journal: Journal) -> None:
    """Data-plane writes are writes: on a target that does not allow them in this run, or in a
    --plan run, they are planned, not made (the scenario is skipped saying what it would have
    written, as the connectivity probe is), before anything is sent."""
    if journal.plan:
        raise Planned([f"{what} at {endpoint.describe()}"])
    if not target.allow_writes:
        raise Planned(
            [f"{what} at {endpoint.describe()} ({target.describe()} is read-only in this run: "
             "--allow-writes lets it write to its services)"]
        )  # fmt: skip


def milvus_round_trip(
    endpoint: Endpoint, target: Target, journal: Journal, dimension: int = 8
) -> None:
    """Create a scratch collection, insert, find the inserted vector, drop it (always)."""
    from pymilvus.exceptions import MilvusException

    require_writes(target, endpoint, "create a scratch collection", journal)
    journal.hold()
    name = data_plane_name(journal.run_id, "_")
    subject = f"Milvus at {endpoint.url}"
    vectors = [[float(i == j) for j in range(dimension)] for i in range(3)]
    with milvus_client(endpoint) as client:
        try:
            sweep_milvus(client, journal, endpoint)
            client.create_collection(name, dimension=dimension, metric_type="COSINE")
            client.insert(name, [{"id": i, "vector": v} for i, v in enumerate(vectors)])
            hits = client.search(name, data=[vectors[2]], limit=1)
            found = hits[0][0]["id"] if hits and hits[0] else None
            if found != 2:
                raise fail(subject, "a search to find the vector just inserted (id 2)",
                           f"the search returned {found!r}")  # fmt: skip
        except MilvusException as error:
            raise fail(subject, "a scratch collection to store and find a vector",
                       f"Milvus refused: {error}") from None  # fmt: skip
        finally:
            with suppress(MilvusException):  # the server went away: nothing to clean on it
                client.drop_collection(name)


def sweep_milvus(client: MilvusClient, journal: Journal, endpoint: Endpoint) -> None:
    """Scratch collections of dead runs (a round trip killed before it dropped its own)."""
    names = {
        str(name): (lambda name=name: client.drop_collection(name))
        for name in client.list_collections()
        if str(name).startswith("stagecheck_")
    }
    sweep_named(journal, names, f"Milvus at {endpoint.url}")


def milvus_collection_holds(endpoint: Endpoint, collection: str, at_least: int) -> None:
    subject = f"Milvus collection {collection} at {endpoint.url}"
    with milvus_client(endpoint) as client:
        existing = client.list_collections()
        if collection not in existing:
            raise fail(subject, "it exists", "not found",
                       f"collections there: {', '.join(sorted(existing)) or 'none'}")  # fmt: skip
        count = int(client.get_collection_stats(collection).get("row_count", 0))
        if count < at_least:
            raise fail(subject, f"at least {at_least} entities", f"{count} entities")


# -- an OpenAI-compatible model server (vLLM) -------------------------------------------------
def _openai(endpoint: Endpoint) -> str:
    return endpoint.url if endpoint.url.endswith("/v1") else f"{endpoint.url}/v1"


@with_backend_evidence
def _call(
    endpoint: Endpoint, method: str, url: str, subject: str, expected: str, body: Any = None
) -> tuple[Any, Evidence]:
    """One call to an HTTP service of the data plane: its JSON answer and the exchange as
    evidence, or a red step naming the endpoint, what came back, with the exchange attached."""
    refuse_if_silent(endpoint, subject, expected)
    started = time.monotonic()
    try:
        with endpoint.client() as http:
            response = http.request(method, url, json=body)
    except httpx.HTTPError as error:
        took = time.monotonic() - started
        if isinstance(error, httpx.TimeoutException):
            endpoint.health.note_timeout(f"{method} {httpx.URL(url).path}", took)
        seen = unanswered(method, url, error, took)
        raise fail(subject, expected, _unreachable(endpoint, error), evidence=[seen]) from None
    seen = exchange(response)
    if response.status_code != 200:
        actual = f"HTTP {response.status_code}: {response.text[:300]}"
        raise fail(subject, expected, actual, evidence=[seen])
    try:
        return response.json(), seen
    except ValueError:
        kind = response.headers.get("content-type", "no content-type")
        raise fail(
            subject,
            expected,
            f"HTTP 200 with a body that is not JSON ({kind}): {response.text[:120]!r}",
            f"{endpoint.describe()} may not be the service's API (a login page or a proxy "
            "answers with HTML)",
            evidence=[seen],
        ) from None


def served_models(endpoint: Endpoint) -> list[str]:
    subject, expected = f"model server at {endpoint.url}", "a list of served models"
    url = f"{_openai(endpoint)}/models"
    listing, seen = _call(endpoint, "GET", url, subject, expected)
    data = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(data, list) or not all(isinstance(m, dict) and "id" in m for m in data):
        raise fail(subject, expected, "an answer without a data list of models", evidence=[seen])
    return [str(m["id"]) for m in data]


def model_listed(endpoint: Endpoint, model: str) -> None:
    served = served_models(endpoint)
    if model not in served:
        raise fail(f"model server at {endpoint.url}", f"model {model} to be served",
                   f"it serves {', '.join(served) or 'no model'}")  # fmt: skip


def chat(endpoint: Endpoint, model: str, messages: list[dict[str, str]]) -> str:
    subject = f"model {model} at {endpoint.url}"
    body = {"model": model, "messages": messages, "temperature": 0, "max_tokens": 64}
    url = f"{_openai(endpoint)}/chat/completions"
    answer, seen = _call(endpoint, "POST", url, subject, "a chat completion", body)
    try:
        text = str(answer["choices"][0]["message"].get("content") or "")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise fail(subject, "a chat completion", "an answer without choices[0].message",
                   evidence=[seen]) from None  # fmt: skip
    if not text.strip():
        raise fail(subject, "a non-empty answer", "an empty answer", evidence=[seen])
    return text


def answer_contains(answer: str, expected: str, subject: str) -> None:
    if expected.lower() not in answer.lower():
        raise fail(subject, f"an answer containing {expected!r}", f"the answer was {answer!r}")


# -- Llama Stack ------------------------------------------------------------------------------
@dataclass
class LlamaStack:
    """A Llama Stack server through llama-stack-client, with version skew explained."""

    endpoint: Endpoint
    created: list[Callable[[], object]] = field(default_factory=list)

    def __post_init__(self) -> None:
        from llama_stack_client import LlamaStackClient

        http = httpx.Client(
            verify=self.endpoint.tls(),
            timeout=self.endpoint.timeout(),
            headers=self.endpoint.headers(),
        )
        self.client = LlamaStackClient(base_url=self.endpoint.url, http_client=http, max_retries=0)

    @property
    def subject(self) -> str:
        return f"Llama Stack at {self.endpoint.url}"

    def server_version(self) -> str:
        try:
            with self.endpoint.client() as http:
                return str(http.get("/v1/version").json().get("version", "unknown"))
        except (httpx.HTTPError, ValueError):
            return "unknown"

    @with_backend_evidence
    def call(
        self, expected: str, action: Callable[[], T], cause: Callable[[], str | None] | None = None
    ) -> T:
        import llama_stack_client

        refuse_if_silent(self.endpoint, self.subject, expected)
        started = time.monotonic()
        try:
            return action()
        except llama_stack_client.APIConnectionError as error:
            if isinstance(error, llama_stack_client.APITimeoutError):
                self.endpoint.health.note_timeout(expected, time.monotonic() - started)
            raise fail(
                self.subject,
                expected,
                _unreachable(self.endpoint, error),
                cause() if cause else None,
            ) from None
        except llama_stack_client.APIStatusError as error:
            if error.status_code == 426:
                server, client = self.server_version(), llama_stack_client.__version__
                raise fail(
                    self.subject, expected,
                    f"the server (Llama Stack {server}) refuses this client "
                    f"(llama-stack-client {client}): HTTP 426",
                    f"client and server minor versions differ; install "
                    f"llama-stack-client=={'.'.join(server.split('.')[:2])}.* in stagecheck's "
                    "environment to talk to this server",
                ) from None  # fmt: skip
            raise fail(
                self.subject,
                expected,
                f"HTTP {error.status_code}: {str(error)[:400]}",
                cause() if cause else None,
            ) from None

    def healthy(self, cause: Callable[[], str | None] | None = None) -> str:
        """``cause``: why the server may not answer, asked only when it does not."""
        health = self.call("a health check", lambda: self.client.inspect.health(), cause)
        status = getattr(health, "status", None)
        if status != "OK":
            raise fail(self.subject, "health OK", f"health {status!r}")
        return self.server_version()

    def models(self) -> list[Any]:
        return list(self.call("the registered models", lambda: self.client.models.list()))

    def model_registered(
        self, model: str, provider: str | None, cause: Callable[[], str | None]
    ) -> str:
        """The model is listed (from the provider, if named) and answers a one-token prompt:
        a listed model whose provider cannot be reached is not usable, and some Llama Stack
        versions list statically configured models whatever their provider's state."""
        import llama_stack_client

        models = self.models()
        expected = f"model {model}" + (f" from provider {provider}" if provider else "")
        found = next(
            (
                item
                for item in models
                if (item.id == model or item.id.endswith(f"/{model}"))
                and (provider is None or item.id.split("/")[0] == provider)
            ),
            None,
        )
        if found is None:
            ids = ", ".join(m.id for m in models) or "no model"
            raise fail(self.subject, f"{expected} registered", f"it lists {ids}", cause())
        client, model_id = self.client, str(found.id)
        try:
            client.chat.completions.create(
                model=model_id, messages=[{"role": "user", "content": "ping"}], max_tokens=1
            )
        except llama_stack_client.APIError as error:
            status = getattr(error, "status_code", None)
            said = f"HTTP {status}" if status else type(error).__name__
            self.endpoint.health.note_unusable(
                [model, model_id], f"a one-token completion through it failed ({said})"
            )
            raise fail(
                self.subject,
                f"{expected} registered and answering",
                f"{model_id} is listed, but a completion through it fails"
                + (f" (HTTP {status})" if status else f": {error}"),
                cause() or "its inference provider cannot reach the model server",
            ) from None
        return model_id

    def vector_store(
        self,
        documents: list[tuple[str, str]],
        embedding_model: str,
        provider: str,
        journal: Journal,
        cause: Callable[[], str | None] | None = None,
    ) -> str:
        """A vector store holding the documents, ingested; removed by ``cleanup``. Stores that
        dead runs left (the run id is in the name) are swept first. ``cause``: why the server
        may not answer, asked only when it does not."""
        client = self.client
        journal.hold()
        self.sweep(journal, cause)
        store = self.call(
            "a new vector store",
            lambda: client.vector_stores.create(
                name=data_plane_name(journal.run_id),
                extra_body={"provider_id": provider, "embedding_model": embedding_model},
            ),
            cause,
        )
        self.created.append(lambda: client.vector_stores.delete(vector_store_id=store.id))
        for name, text in documents:
            self._ingest(store.id, name, text)
        return str(store.id)

    def sweep(self, journal: Journal, cause: Callable[[], str | None] | None = None) -> None:
        client = self.client
        stores = self.call("the vector stores", lambda: list(client.vector_stores.list()), cause)
        sweep_named(
            journal,
            {
                str(s.name): self._remover(str(s.id))
                for s in stores
                if (s.name or "").startswith("stagecheck-")
            },
            self.subject,
        )

    def _remover(self, store_id: str) -> Callable[[], None]:
        """Removes a vector store with the files ingested into it."""
        client = self.client

        def remove() -> None:
            for attached in client.vector_stores.files.list(vector_store_id=store_id):
                client.files.delete(file_id=attached.id)
            client.vector_stores.delete(vector_store_id=store_id)

        return remove

    def _ingest(self, store_id: str, name: str, text: str) -> None:
        client = self.client
        upload = (name, io.BytesIO(text.encode()), "text/plain")
        file = self.call(
            f"file {name} uploaded", lambda: client.files.create(file=upload, purpose="assistants")
        )
        self.created.append(lambda: client.files.delete(file_id=file.id))
        attached = self.call(
            f"file {name} ingested",
            lambda: client.vector_stores.files.create(vector_store_id=store_id, file_id=file.id),
        )
        deadline = time.monotonic() + INGEST_TIMEOUT_S
        while attached.status == "in_progress" and time.monotonic() < deadline:
            time.sleep(0.2)
            attached = client.vector_stores.files.retrieve(
                vector_store_id=store_id, file_id=file.id
            )
        if attached.status != "completed":
            raise fail(
                self.subject,
                f"document {name} ingested into the vector store",
                f"ingestion {attached.status}: {attached.last_error}",
            )

    def search(self, store_id: str, question: str) -> list[tuple[str, str]]:
        """(file name, text) of the chunks retrieved for the question, best first."""
        found = self.call(
            "a vector store search",
            lambda: self.client.vector_stores.search(vector_store_id=store_id, query=question),
        )  # noqa: E501
        results = []
        for hit in found.data:
            text = " ".join(getattr(c, "text", "") for c in hit.content)
            results.append((str(getattr(hit, "filename", None) or hit.file_id), text))
        return results

    def answer(
        self, model: str, question: str, context: list[str], cause: Callable[[], str | None]
    ) -> str:
        """The model's answer through Llama Stack, grounded in the retrieved context."""
        messages: list[Any] = [
            {"role": "system", "content": RAG_SYSTEM_PROMPT},
            {
                "role": "user",
                "content": "Context:\n" + "\n".join(context) + f"\n\nQuestion: {question}",
            },
        ]
        completion = self.call(
            f"an answer from model {model}",
            lambda: self.client.chat.completions.create(
                model=model,
                messages=messages,
                temperature=0,
                max_tokens=64,
            ),
            cause,
        )
        return str(completion.choices[0].message.content or "")

    def cleanup(self) -> None:
        import llama_stack_client

        while self.created:
            undo = self.created.pop()
            with suppress(llama_stack_client.APIError):  # already gone, or the server went away
                undo()


# -- the stage's model, as the target names it ----------------------------------------------
def stage_model(target: Target) -> str:
    model = target.vars.get("model")
    if not model:
        raise ConfigError(
            f"{target.describe()} names no stage model: set [targets.{target.name}.vars] "
            'model = "<served model id>" in stagecheck.toml'
            + (
                " (or start the sandbox's data plane: scripts/sandbox up)"
                if target.type == "sandbox"
                else ""
            )
        )
    return model


def model_answers(endpoint: Endpoint, model: str, question: str, expected: str | None) -> None:
    answer = chat(endpoint, model, [{"role": "user", "content": question}])
    if expected is not None:
        answer_contains(answer, expected, f"model {model} at {endpoint.url}")


def stage_llama_stack_healthy(
    stack: LlamaStack, target: Target, cluster: Cluster, within: float | None
) -> str:
    """Llama Stack answers its health check (``within``: again while it does not); a server
    that does not answer is explained by its server resources' pods (``why_not_answering``)."""
    return within_budget(
        stack.endpoint, within, lambda: stack.healthy(lambda: why_not_answering(cluster, target))
    )


def stage_model_registered(
    stack: LlamaStack,
    target: Target,
    cluster: Cluster,
    served: Callable[[], list[str]] | None = None,
) -> str:
    """``served``: what the model server lists, asked only to explain a failure."""
    model = stage_model(target)
    provider = target.vars.get("inference_provider")
    return stack.model_registered(
        model, provider, lambda: why_model_missing(cluster, target, stack, served=served)
    )


# The Llama Stack server resources, by the operator that serves them, with their pods' app
# label (llama-stack-k8s-operator controllers/resource_helper.go; ogx-k8s-operator).
LLAMA_STACK_SERVERS = {
    "LlamaStackDistribution.llamastack.io": "llama-stack",
    "OGXServer.ogx.io": "ogx",
}
# llama-stack providers/datatypes.py HealthStatus; "Not Implemented" is no failure.
HEALTH_OK, HEALTH_NOT_IMPLEMENTED = "OK", "Not Implemented"
PROVIDERS_TIMEOUT_S = 5.0  # what the operator allows the same call


Providers = tuple[list[JsonObject] | None, str]  # /v1/providers' data, or how it did not answer


def why_model_missing(
    cluster: Cluster,
    target: Target,
    stack: LlamaStack | None = None,
    providers: Providers | None = None,
    served: Callable[[], list[str]] | None = None,
) -> str | None:
    """What the cluster says about Llama Stack's inference provider, the model server its
    server resource names, the model it asks that server for (INFERENCE_MODEL against what
    ``served`` lists), and its pods' mesh sidecar.

    Provider health comes from the server's own ``/v1/providers`` where it answers; the
    operator's ``status.distributionConfig.providers`` is only a copy of that reply, taken when
    its Deployment was last ready (its HealthCheck and phase follow the Deployment alone:
    llama-stack-k8s-operator controllers/llamastackdistribution_controller.go), so it is read
    only when the server does not answer. ``providers``: the server's reply, when the caller
    has just read it. A missing sidecar is a cause only where the mesh is shown to refuse the
    model Service plaintext calls (``mesh.plaintext_refused``)."""
    reasons: list[str] = []
    servers = _llama_stack_servers(cluster, target.namespace)
    if providers is None:
        providers = _served_providers(stack) if stack is not None else (None, "")
    live, unanswered = providers
    if stack is not None and live is not None:
        sources = [(live, f"Llama Stack's /v1/providers at {stack.endpoint.url}")]
    else:
        sources = [
            (
                (server.get("status", {}).get("distributionConfig") or {}).get("providers") or [],
                f"{server['kind']} {server['metadata']['name']} status, the operator's copy "
                "of /v1/providers" + (f"; the server's own {unanswered}" if unanswered else ""),
            )
            for server, _ in servers
        ]
    for listed, source in sources:
        for provider_id, said in _unhealthy(listed):
            reasons.append(
                f"its inference provider {provider_id} reports {said!r} "
                f"({source}): Llama Stack cannot reach the model server"
            )
    if served is not None:
        reasons.extend(_asked_model_not_served(servers, served))
    try:
        found: list[tuple[JsonObject | None, str]] = [*servers] or [(None, "llama-stack")]
        for server, app in found:
            reasons.extend(_model_server_causes(cluster, target.namespace, server, app))
    except KubeApiError as error:  # said, so a cause is not silently left out
        reasons.append(
            "(Llama Stack's model server and pods could not be read: "
            f"HTTP {error.status} {error.reason})"
        )
    return "; ".join(reasons) or None


def why_not_answering(cluster: Cluster, target: Target) -> str | None:
    """What the logs of the Llama Stack server resources' pods that are not ready say about
    the server's stores (``llama_stack_stores``). Their state itself is the step's evidence,
    not its cause: a crash-looping pod is waiting or briefly running depending on the moment."""
    reasons: list[str] = []
    try:
        for server, app in _llama_stack_servers(cluster, target.namespace):
            pods = _server_pods(cluster, target.namespace, server, app)
            not_ready = [p for p in pods if not pod_is_ready(p)]
            stores = stores_cause(cluster.kube, server, not_ready)
            reasons.extend([stores] if stores else [])
    except KubeApiError as error:  # said, so a cause is not silently left out
        reasons.append(
            f"(Llama Stack's pods could not be read: HTTP {error.status} {error.reason})"
        )
    return "; ".join(reasons) or None


# Where each server kind takes its container's env (llama-stack-k8s-operator api/v1alpha1
# ContainerSpec.Env; ogx-k8s-operator api/v1beta1 WorkloadOverrides.Env). The distribution's
# run.yaml reads the model server's URL from ${env.VLLM_URL}.
SERVER_ENV = {
    "LlamaStackDistribution": "spec.server.containerSpec.env",
    "OGXServer": "spec.workload.overrides.env",
}
MODEL_URL = "VLLM_URL"
MODEL_NAME = "INFERENCE_MODEL"  # rh-dev's run.yaml: model_id ${env.INFERENCE_MODEL}
SLICE_OWNER = "kubernetes.io/service-name"  # the label an EndpointSlice names its Service by


@dataclass(frozen=True)
class GivenVariable:
    """A variable of a Llama Stack server's env: its value, or where it comes from (never the
    value of a Secret or ConfigMap)."""

    name: str
    field: str  # 'LlamaStackDistribution llama-stack spec.server.containerSpec.env'
    value: str | None
    source: str = ""  # 'Secret vllm key url', when given through valueFrom

    def describe(self) -> str:
        return f"{self.name} ({self.field})"


def _given(server: JsonObject, name: str) -> GivenVariable | None:
    path = SERVER_ENV.get(str(server.get("kind")))
    if path is None:
        return None
    found: Any = server
    for key in path.split("."):
        found = found.get(key) if isinstance(found, dict) else None
    field = f"{server['kind']} {server['metadata']['name']} {path}"
    for variable in found if isinstance(found, list) else []:
        if not isinstance(variable, dict) or variable.get("name") != name:
            continue
        if "valueFrom" not in variable:
            return GivenVariable(name, field, str(variable.get("value", "")))
        source = variable.get("valueFrom") or {}
        ref = source.get("secretKeyRef") or source.get("configMapKeyRef")
        kind = "Secret" if "secretKeyRef" in source else "ConfigMap"
        said = f"{kind} {ref.get('name')} key {ref.get('key')}" if ref else "a valueFrom"
        return GivenVariable(name, field, None, said)
    return None


def _asked_model_not_served(
    servers: list[tuple[JsonObject, str]], served: Callable[[], list[str]]
) -> list[str]:
    """A server resource whose INFERENCE_MODEL names a model the model server does not serve
    (vLLM serves the name its --served-model-name gives; KServe's runtime sets the
    InferenceService's name)."""
    asked = [g for server, _ in servers if (g := _given(server, MODEL_NAME)) and g.value]
    if not asked:
        return []
    try:
        listed = served()
    except StagecheckError:
        return []  # the model server does not answer: its own causes say why
    return [
        f"Llama Stack asks the model server for {given.describe()} = {given.value!r}, but the "
        f"model server serves {', '.join(listed) or 'no model'}: the names differ"
        for given in asked
        if given.value not in listed
    ]


@dataclass(frozen=True)
class ModelServer:
    """Where a Llama Stack server's VLLM_URL leads: a cause read from it, the cluster Service it
    reaches, or why that Service's mesh cannot be judged."""

    cause: str | None = None
    service: JsonObject | None = None
    unknown: str | None = None


def _model_server_causes(
    cluster: Cluster, namespace: str, server: JsonObject | None, app: str
) -> list[str]:
    """What the server's VLLM_URL and its pods' sidecar say about its model server."""
    given = _given(server, MODEL_URL) if server is not None else None
    if given is not None:
        model = _model_server(cluster, namespace, given)
    elif server is not None:
        where = SERVER_ENV.get(server["kind"], "its env")
        named = f"{server['kind']} {server['metadata']['name']}"
        model = ModelServer(unknown=f"{named} sets no {MODEL_URL} in {where}")
    else:
        model = ModelServer(unknown="no Llama Stack server resource names its model server")
    reasons = [model.cause] if model.cause else []
    pods = _server_pods(cluster, namespace, server, app)
    without = [p["metadata"]["name"] for p in pods if SIDECAR not in container_names(p)]
    if without:
        sidecar = _sidecar_cause(cluster, without[0], model)
        reasons.extend([sidecar] if sidecar else [])
    return reasons


def _server_pods(
    cluster: Cluster, namespace: str, server: JsonObject | None, app: str
) -> list[JsonObject]:
    """A server resource's pods, by the labels its operator gives them (every ``app`` pod
    without a resource)."""
    selector = (
        f"app={app},app.kubernetes.io/instance={server['metadata']['name']}"
        if server is not None
        else f"app={app}"
    )
    return list(
        cluster.kube.get(f"/api/v1/namespaces/{namespace}/pods", {"labelSelector": selector}).get(
            "items", []
        )
    )


def _model_server(cluster: Cluster, namespace: str, given: GivenVariable) -> ModelServer:
    if given.value is None:
        said = f"{given.describe()} comes from {given.source}"
        return ModelServer(cause=said, unknown=f"{given.name} comes from {given.source}")
    url, kube = given.value, cluster.kube
    named = _cluster_service(kube, urlsplit(url).hostname or "", namespace)
    if named is None:  # the mesh's mTLS between its workloads says nothing about it
        outside = f"{given.describe()} is {url}, outside the cluster"
        return ModelServer(cause=f"{outside}: the model server Llama Stack was given")
    where, name = named
    service = kube.get_or_none(f"/api/v1/namespaces/{where}/services/{name}")
    if service is None:
        return ModelServer(
            cause=f'{given.describe()} is {url}: no Service "{name}" in namespace {where}'
        )
    if service.get("spec", {}).get("type") == "ExternalName":  # no endpoints, pods of its own
        alias = service["spec"].get("externalName")
        said = f'Service "{name}" in namespace {where} is an ExternalName for {alias}'
        return ModelServer(unknown=said)
    empty = _no_ready_endpoints(kube, service)
    if empty:
        said = f'Service "{name}" in namespace {where} has no ready endpoints ({empty})'
        return ModelServer(cause=f"{given.describe()} is {url}: {said}", service=service)
    return ModelServer(service=service)


def _cluster_service(kube: Kube, host: str, namespace: str) -> tuple[str, str] | None:
    """(namespace, Service name) of a host cluster DNS resolves to a Service:
    ``<svc>.<ns>.svc[.<cluster domain>]``, ``<svc>.<ns>`` (where namespace ``<ns>`` exists)
    or ``<svc>`` (the caller's namespace, through its DNS search path); None for any other."""
    labels = host.lower().rstrip(".").split(".")
    if not host or host == "localhost" or all(label.isdigit() for label in labels):
        return None
    if len(labels) >= 3 and labels[2] == "svc":
        return labels[1], labels[0]
    if len(labels) == 2 and kube.get_or_none(f"/api/v1/namespaces/{labels[1]}") is not None:
        return labels[1], labels[0]
    return (namespace, labels[0]) if len(labels) == 1 else None


def _no_ready_endpoints(kube: Kube, service: JsonObject) -> str | None:
    """Why the Service has no ready endpoint, from its EndpointSlices; None: it has one."""
    meta = service["metadata"]
    slices = kube.get(
        f"/apis/discovery.k8s.io/v1/namespaces/{meta['namespace']}/endpointslices",
        {"labelSelector": f"{SLICE_OWNER}={meta['name']}"},
    ).get("items", [])
    endpoints = [e for s in slices for e in s.get("endpoints") or []]
    # conditions.ready unset means ready (discovery.k8s.io/v1 EndpointConditions)
    if any((e.get("conditions") or {}).get("ready") is not False for e in endpoints):
        return None
    if not slices:
        return f"no EndpointSlice labelled {SLICE_OWNER}={meta['name']}"
    listed = f"{len(endpoints)} endpoint" + ("" if len(endpoints) == 1 else "s")
    return f"its EndpointSlices list {listed}, none ready"


def _sidecar_cause(cluster: Cluster, pod: str, model: ModelServer) -> str | None:
    """The pod's missing sidecar, said only as far as the mesh shows it matters: never where
    the cluster serves no mesh."""
    missing = f"pod {pod} has no {SIDECAR} sidecar"
    if model.service is None:
        if model.unknown is None or mesh.served_rules(cluster.kube, cluster.discovery) is None:
            return None  # a URL outside the cluster or no such Service (its cause says so)
        return f"{missing}; whether its model server requires mTLS is not known ({model.unknown})"
    refusal = mesh.plaintext_refused(cluster.kube, cluster.discovery, model.service)
    if refusal is None:
        return None
    if refusal.refused:
        return (
            f"{missing}, so the mesh rejects its calls to the mTLS-only model service: "
            f"{refusal.said}, by {refusal.rules}"
        )
    return f"{missing}, which its model service does not require: {refusal.said}"


def _known_unusable(stack: LlamaStack, model: str) -> str | None:
    """A completion through the model failed earlier in this run: asking again would only
    wait out the provider's retries against the same unreachable model server."""
    said = stack.endpoint.health.unusable.get(model)
    return f"model {model}: earlier in this run {said}" if said else None


def unhealthy_inference(providers: Providers) -> str | None:
    """What Llama Stack's own ``/v1/providers`` says of an inference provider that is not
    healthy (None: all healthy, or it does not say): a question would only wait out the
    server's timeout against a model it cannot reach."""
    bad = _unhealthy(providers[0] or [])
    return f"Llama Stack's inference provider {bad[0][0]} reports {bad[0][1]!r}" if bad else None


def _unhealthy(providers: list[JsonObject]) -> list[tuple[str, str]]:
    """(provider_id, what its health says) of each inference provider not healthy."""
    found = []
    for provider in providers:
        health = provider.get("health") or {}
        status = health.get("status")
        if provider.get("api") != "inference" or status in (
            None,
            HEALTH_OK,
            HEALTH_NOT_IMPLEMENTED,
        ):
            continue
        said = f"{status}: {health['message']}" if health.get("message") else str(status)
        found.append((str(provider.get("provider_id")), said))
    return found


def _llama_stack_servers(cluster: Cluster, namespace: str) -> list[tuple[JsonObject, str]]:
    """The namespace's Llama Stack server resources of every kind served, with their pods' app."""
    found: list[tuple[JsonObject, str]] = []
    for kind, app in LLAMA_STACK_SERVERS.items():
        try:
            resource = cluster.discovery.resolve(kind)
            items = cluster.kube.get(resource.collection_path(namespace)).get("items", [])
        except (UnknownKind, KubeApiError):
            continue
        found.extend((item, app) for item in items)
    return found


def _served_providers(stack: LlamaStack) -> Providers:
    """(``GET /v1/providers``'s ``data``, "") or (None, how it did not answer)."""
    try:
        with stack.endpoint.client(PROVIDERS_TIMEOUT_S) as http:
            reply = http.get("/v1/providers")
    except httpx.HTTPError as error:
        return None, f"/v1/providers does not answer ({type(error).__name__})"
    try:
        data = reply.json().get("data") if reply.status_code == 200 else None
    except (ValueError, AttributeError):
        data = None
    if not isinstance(data, list):
        return None, f"/v1/providers answered HTTP {reply.status_code} without a providers list"
    return [p for p in data if isinstance(p, dict)], ""


# -- retrieval-augmented answers --------------------------------------------------------------
@dataclass
class RagExchange:
    """One scenario's vector store, question, retrieved chunks and answer."""

    store_id: str
    documents: dict[str, str]
    subject: str
    question: str = ""
    retrieved: list[tuple[str, str]] = field(default_factory=list)
    answer: str = ""


def documents_in(folder: Path) -> dict[str, str]:
    """The text files of a folder (.txt, .md), by file name."""
    if not folder.is_dir():
        raise SpecificationError(f"{folder} is not a folder of documents")
    found = {p.name: p.read_text() for p in sorted(folder.iterdir()) if p.suffix in (".txt", ".md")}
    if not found:
        raise SpecificationError(f"{folder} holds no .txt or .md document")
    return found


def documents_from_table(table: list[list[str]]) -> dict[str, str]:
    header, *rows = table
    if [h.strip().lower() for h in header[:2]] != ["name", "text"]:
        raise SpecificationError("the documents table needs the columns: | name | text |")
    return {row[0]: row[1] for row in rows}


def rag_store(
    stack: LlamaStack,
    target: Target,
    documents: dict[str, str],
    journal: Journal,
    cluster: Cluster | None = None,
) -> RagExchange:
    """A new vector store holding ``documents``; a server that does not answer is explained by
    its server resources' pods (``why_not_answering``) where ``cluster`` is given."""
    embedding = target.vars.get("embedding_model")
    if not embedding:
        raise ConfigError(
            f"{target.describe()} names no embedding model: set [targets.{target.name}.vars] "
            'embedding_model = "<provider/model>" in stagecheck.toml'
        )
    provider = target.vars.get("vector_io_provider", "milvus")
    require_writes(target, stack.endpoint, "upload documents into a new vector store", journal)
    cause = (lambda: why_not_answering(cluster, target)) if cluster is not None else None
    store = stack.vector_store(list(documents.items()), embedding, provider, journal, cause)
    return RagExchange(store_id=store, documents=documents, subject=stack.subject)


def ask(
    rag: RagExchange, stack: LlamaStack, target: Target, cluster: Cluster, question: str
) -> None:
    rag.question = question
    rag.retrieved = stack.search(rag.store_id, question)
    if not rag.retrieved:
        raise fail(rag.subject, f"chunks retrieved for {question!r}", "nothing was retrieved",
                   "the vector store is empty, or its provider (Milvus) lost the data")  # fmt: skip
    model = target.vars.get("llama_stack_model") or stage_model(target)
    providers = _served_providers(stack)
    unhealthy = unhealthy_inference(providers) or _known_unusable(stack, model)
    if unhealthy:  # its answer would only wait out Llama Stack's timeout: red now, with why
        raise fail(
            rag.subject,
            f"an answer to {question!r} from model {model}",
            f"not asked: {unhealthy}",
            why_model_missing(cluster, target, stack, providers),
        )
    context = [text for _, text in rag.retrieved[:3]]
    try:
        rag.answer = stack.answer(
            model, question, context, lambda: why_model_missing(cluster, target, stack)
        )
    except StepFailure:
        stack.endpoint.health.note_unusable([model], "an answer through it failed")
        raise


def retrieved_from(rag: RagExchange, document: str) -> None:
    top = rag.retrieved[0][0] if rag.retrieved else None
    if top != document:
        order = ", ".join(name for name, _ in rag.retrieved[:5]) or "nothing"
        raise fail(rag.subject, f"{document} retrieved first for {rag.question!r}",
                   f"retrieved, best first: {order}")  # fmt: skip
