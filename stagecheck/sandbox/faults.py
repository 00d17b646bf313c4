"""Fault variants of the sandbox: real failures reproduced, to see the stage turn red.

A fault changes the world before it is applied (``change_world``: what GitOps would have
applied by mistake), or how the data plane's processes run (``dataplane``: names the data plane
understands), or the values the world's files are rendered with (``values``). It never writes
a status: every status a check reads comes from the stand-ins, the API server or kwok, by
their rules, from what the fault changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stagecheck.sandbox.backends import BY_ROLE
from stagecheck.sandbox.dataplane.llamastack_config import STORE_DIR

Docs = list[dict[str, Any]]
# A model URL whose host no Service of the world has: the predictor's name with a typo
NOWHERE_URL = f"http://mistral-24b-predictor.{BY_ROLE['model'].namespace}.svc.cluster.local/v1"
# A served model name other than the one Llama Stack asks for (INFERENCE_MODEL)
OTHER_SERVED_NAME = "mistral-small-24b"
# The stage-2 incident's custom run.yaml (its "Custom ConfigMap Approach"): external URLs
CUSTOM_RUN_YAML = """\
version: '2'
image_name: rh
apis: [inference, vector_io]
providers:
  inference:
  - provider_id: vllm-inference
    provider_type: remote::vllm
    config:
      url: https://mistral-24b-quantized-private-ai-demo.apps.sandbox.local/v1
"""


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    change_world: Callable[[Docs], Docs]
    dataplane: frozenset[str] = frozenset()
    values: dict[str, str] = field(default_factory=dict)

    def change_layers(self, layers: list[Docs]) -> list[Docs]:
        """``change_world`` over the world's files, each document kept in its own file's layer
        (a document the change adds joins the last layer)."""
        where = {id(d): i for i, layer in enumerate(layers) for d in layer}
        changed = self.change_world([d for layer in layers for d in layer])
        result: list[Docs] = [[] for _ in layers]
        for doc in changed:
            result[where.get(id(doc), len(layers) - 1)].append(doc)
        return result


def _find(docs: Docs, kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def _mesh_as_the_seed_had_it(docs: Docs) -> Docs:
    """The stage-2 incident's mesh: the control plane's ``autoInject`` at its v2.5 default
    (false, maistra/istio-operator smcp-templates/v2.5/base), and the Llama Stack operator's
    pod without ``sidecar.istio.io/inject`` (the operator has no way to set it). The API
    server's admission then sends the pod to the injector, which leaves it without istio-proxy
    (policy ``disabled``, no inject value): no container is removed here."""
    smcp = _find(docs, "ServiceMeshControlPlane", "data-science-smcp")
    injection = ((smcp.get("spec") or {}).get("proxy") or {}).get("injection") or {}
    injection.pop("autoInject", None)
    return docs


def _llama_stack_env(docs: Docs, name: str, value: str) -> Docs:
    """The LlamaStackDistribution's ``containerSpec.env`` variable ``name`` set to ``value``."""
    llsd = _find(docs, "LlamaStackDistribution", "llama-stack")
    env = llsd["spec"]["server"]["containerSpec"]["env"]
    for item in env:
        if item["name"] == name:
            item["value"] = value
    return docs


def _served_under_another_name(docs: Docs) -> Docs:
    """The InferenceService's own vLLM arguments name another served model (appended after the
    runtime's ``--served-model-name={{.Name}}``, the last one wins)."""
    isvc = _find(docs, "InferenceService", "mistral-24b-quantized")
    model = isvc["spec"]["predictor"]["model"]
    model["args"] = [*(model.get("args") or []), f"--served-model-name={OTHER_SERVED_NAME}"]
    return docs


def _config_mounted_over_store(docs: Docs) -> Docs:
    """A ConfigMap holding a custom run.yaml, mounted through the LlamaStackDistribution's
    ``podOverrides`` at the rh-dev distribution's store directory: Kubernetes mounts a
    ConfigMap read-only, and the server keeps its SQLite stores there."""
    llsd = _find(docs, "LlamaStackDistribution", "llama-stack")
    namespace = llsd["metadata"]["namespace"]
    overrides = llsd["spec"]["server"].setdefault("podOverrides", {})
    overrides["volumes"] = [{"name": "config", "configMap": {"name": "llamastack-config"}}]
    overrides["volumeMounts"] = [{"name": "config", "mountPath": STORE_DIR}]
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "llamastack-config", "namespace": namespace},
        "data": {"run.yaml": CUSTOM_RUN_YAML},
    }
    return [*docs, config_map]


def _pipelines_access_not_granted(docs: Docs) -> Docs:
    """The stage's workload account was never bound to the pipelines route's role."""
    binding = _find(docs, "RoleBinding", "ds-pipeline-user-access-dspa-rag-workload")
    return [d for d in docs if d is not binding]


FAULTS = {
    f.name: f
    for f in (
        Fault(
            name="seed-no-sidecar",
            description=(
                "the stage-2 incident: the Llama Stack operator creates its pod without the "
                "sidecar injection annotation and the mesh's autoInject is at its default "
                "(false), so the injector leaves the pod without istio-proxy; it cannot reach "
                "the model server through the mesh, and the model is never registered"
            ),
            change_world=_mesh_as_the_seed_had_it,
        ),
        Fault(
            name="dspa-wrong-credentials",
            description=(
                "the DSPA's Secret holds an S3 secret key the object store does not accept "
                "(a .env copied from another environment), so the operator's own object-store "
                "check fails and no pipeline component is deployed"
            ),
            # The cause only: the DSPO stand-in's StatObject with this key is refused by the
            # sandbox's S3, and ObjectStoreAvailable=False follows from that.
            change_world=lambda docs: docs,
            values={"s3_secret_key": "not-the-key-the-store-knows"},
        ),
        Fault(
            name="pipelines-access-not-granted",
            description=(
                "the stage's workload account is not bound to the pipelines route's role "
                "(ds-pipeline-user-access-dspa), so the pipelines API refuses its token"
            ),
            change_world=_pipelines_access_not_granted,
        ),
        Fault(
            name="milvus-down",
            description=(
                "Milvus's process exits as it starts (its storage cannot be opened), so its "
                "pod crash-loops through the kubelet's back-off and its server does not answer"
            ),
            change_world=lambda docs: docs,
            dataplane=frozenset({"milvus-down"}),
        ),
        Fault(
            name="vllm-url-nowhere",
            description=(
                "the LlamaStackDistribution's VLLM_URL names a Service that does not exist (a "
                "typo in the predictor's name), so Llama Stack cannot reach the model"
            ),
            change_world=lambda docs: _llama_stack_env(docs, "VLLM_URL", NOWHERE_URL),
        ),
        Fault(
            name="served-name-mismatch",
            description=(
                f"the InferenceService's vLLM arguments serve the model as {OTHER_SERVED_NAME}, "
                "while Llama Stack asks for the InferenceService's name (INFERENCE_MODEL)"
            ),
            change_world=_served_under_another_name,
        ),
        Fault(
            name="config-mounted-over-store",
            description=(
                "the stage-2 incident's custom run.yaml: a ConfigMap mounted through the "
                "LlamaStackDistribution's podOverrides at the rh-dev store directory "
                f"{STORE_DIR}, read-only as Kubernetes mounts ConfigMaps, so the server "
                "cannot create its SQLite databases and its pod crash-loops"
            ),
            change_world=_config_mounted_over_store,
        ),
    )
}
