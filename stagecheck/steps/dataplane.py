"""Data-plane steps: Milvus, the served model, Llama Stack and retrieval-augmented answers.
Services are reached through the target's endpoints (``milvus``, ``model``, ``llama-stack``);
"the stage model" is the target's ``model`` variable (the sandbox fills it in).

    Milvus answers with its server version
    Milvus stores and finds a vector in a scratch collection
    Milvus is at version "<X>" or later
    the Milvus collection "<name>" holds at least <N> entities
    the model server lists the stage model
    the model server lists the model "<name>"
    the URL "<url>" answers <status> [within <duration>]
    the stage model answers the question "<q>" [with an answer containing "<text>"]
    the Llama Stack distribution "<name>" is ready [within <duration>]
    Llama Stack is healthy
    Llama Stack is at version "<X>" or later
    Llama Stack has the stage model registered
    a vector store with the documents:            (a table: name | text)
    a vector store with the documents in "<folder>"   (its .txt and .md files)
    the question "<q>" is asked
    the answer is retrieved from "<document name>"
    the answer contains "<text>"
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pytest_bdd import given, parsers, then, when

from stagecheck.config import Target
from stagecheck.engine import urls, versions
from stagecheck.engine.kubernetes import Cluster
from stagecheck.reporting.versions import SeenVersions
from stagecheck.steps.kubernetes import WITHIN, sentence

if TYPE_CHECKING:
    from stagecheck.engine.dataplane import LlamaStack, RagExchange
    from stagecheck.engine.endpoints import Endpoints
    from stagecheck.engine.runs import Journal


@sentence("Milvus answers with its server version" + WITHIN)
def milvus_version(endpoints: Endpoints, seen_versions: SeenVersions, within: float | None) -> None:
    from stagecheck.engine import dataplane

    endpoint = endpoints.resolve("milvus")
    found = dataplane.within_budget(endpoint, within, lambda: dataplane.milvus_version(endpoint))
    seen_versions.record("milvus", found)


@sentence(r'Milvus is at version "(?P<version>[^"]+)" or later')
def milvus_at_version(endpoints: Endpoints, seen_versions: SeenVersions, version: str) -> None:
    from stagecheck.engine import dataplane

    endpoint = endpoints.resolve("milvus")
    found = dataplane.milvus_version(endpoint)
    seen_versions.record("milvus", found)
    versions.require_at_least(f"Milvus at {endpoint.url}", found, version)


@sentence("Milvus stores and finds a vector in a scratch collection")
def milvus_round_trip(endpoints: Endpoints, target: Target, journal: Journal) -> None:
    from stagecheck.engine import dataplane

    dataplane.milvus_round_trip(endpoints.resolve("milvus"), target, journal)


@sentence(r'the Milvus collection "(?P<name>[^"]+)" holds at least (?P<count>\d+) entities')
def milvus_collection(endpoints: Endpoints, name: str, count: str) -> None:
    from stagecheck.engine import dataplane

    dataplane.milvus_collection_holds(endpoints.resolve("milvus"), name, int(count))


@sentence(r'the model server lists the model "(?P<model>[^"]+)"' + WITHIN)
def named_model_listed(endpoints: Endpoints, model: str, within: float | None) -> None:
    from stagecheck.engine import dataplane

    endpoint = endpoints.resolve("model")
    dataplane.within_budget(endpoint, within, lambda: dataplane.model_listed(endpoint, model))


@sentence(r'the URL "(?P<url>[^"]+)" answers (?P<status>\d{3})' + WITHIN)
def url_answers(target: Target, url: str, status: str, within: float | None) -> None:
    urls.answers(url, int(status), target.endpoint_timeout_s, within)


@sentence("the model server lists the stage model" + WITHIN)
def model_listed(endpoints: Endpoints, target: Target, within: float | None) -> None:
    from stagecheck.engine import dataplane

    endpoint, model = endpoints.resolve("model"), dataplane.stage_model(target)
    dataplane.within_budget(endpoint, within, lambda: dataplane.model_listed(endpoint, model))


@sentence(
    r'the stage model answers the question "(?P<question>[^"]+)"'
    r'(?: with an answer containing "(?P<expected>[^"]+)")?'
)
def model_answers(
    endpoints: Endpoints, target: Target, question: str, expected: str | None
) -> None:
    from stagecheck.engine import dataplane

    dataplane.model_answers(
        endpoints.resolve("model"), dataplane.stage_model(target), question, expected
    )


@sentence(r'the Llama Stack distribution "(?P<name>[^"]+)" is ready' + WITHIN)
def distribution_ready(cluster: Cluster, name: str, within: float | None) -> None:
    cluster.expect_distribution_ready(name, within)


@sentence("Llama Stack is healthy" + WITHIN)
def llama_stack_healthy(
    llama_stack: LlamaStack,
    target: Target,
    cluster: Cluster,
    seen_versions: SeenVersions,
    within: float | None,
) -> None:
    from stagecheck.engine import dataplane

    found = dataplane.stage_llama_stack_healthy(llama_stack, target, cluster, within)
    seen_versions.record("llama-stack", found)


@sentence(r'Llama Stack is at version "(?P<version>[^"]+)" or later')
def llama_stack_at_version(
    llama_stack: LlamaStack, seen_versions: SeenVersions, version: str
) -> None:
    found = llama_stack.healthy()
    seen_versions.record("llama-stack", found)
    versions.require_at_least(llama_stack.subject, found, version)


@sentence("Llama Stack has the stage model registered" + WITHIN)
def llama_stack_model(
    llama_stack: LlamaStack,
    target: Target,
    cluster: Cluster,
    endpoints: Endpoints,
    within: float | None,
) -> None:
    from stagecheck.engine import dataplane

    def served() -> list[str]:  # only to explain a failure
        return dataplane.served_models(endpoints.resolve("model"))

    dataplane.within_budget(
        llama_stack.endpoint,
        within,
        lambda: dataplane.stage_model_registered(llama_stack, target, cluster, served),
    )


@given("a vector store with the documents:", target_fixture="rag")
def vector_store(
    llama_stack: LlamaStack,
    target: Target,
    cluster: Cluster,
    journal: Journal,
    datatable: list[list[str]],
) -> RagExchange:
    from stagecheck.engine import dataplane

    documents = dataplane.documents_from_table(datatable)
    return dataplane.rag_store(llama_stack, target, documents, journal, cluster)


@given(
    parsers.re(r'a vector store with the documents in "(?P<folder>[^"]+)"'), target_fixture="rag"
)
def vector_store_from_folder(
    llama_stack: LlamaStack,
    target: Target,
    cluster: Cluster,
    repository: Path,
    journal: Journal,
    folder: str,
) -> RagExchange:
    from stagecheck.engine import dataplane

    documents = dataplane.documents_in(repository / folder)
    return dataplane.rag_store(llama_stack, target, documents, journal, cluster)


@when(parsers.re(r'the question "(?P<question>[^"]+)" is asked'))
def question_asked(
    rag: RagExchange, llama_stack: LlamaStack, target: Target, cluster: Cluster, question: str
) -> None:
    from stagecheck.engine import dataplane

    dataplane.ask(rag, llama_stack, target, cluster, question)


@then(parsers.re(r'the answer is retrieved from "(?P<document>[^"]+)"'))
def retrieved_from(rag: RagExchange, document: str) -> None:
    from stagecheck.engine import dataplane

    dataplane.retrieved_from(rag, document)


@then(parsers.re(r'the answer contains "(?P<text>[^"]+)"'))
def answer_contains(rag: RagExchange, text: str) -> None:
    from stagecheck.engine import dataplane

    dataplane.answer_contains(rag.answer, text, rag.subject)
