"""The Llama Stack operator's and KServe's stand-ins against a real control plane: the status
each writes follows its operator's rules (llama-stack-k8s-operator v0.3.0
controllers/llamastackdistribution_controller.go ``updateStatus``/``updateDeploymentStatus``,
controllers/status.go; kserve v0.15.2 pkg/apis/serving/v1beta1/inference_service_status.go
``PropagateStatus``/``PropagateModelStatus``, reconcilers/ingress/ingress_reconciler.go), and
comes from the Deployment kwok runs and from what the server behind it answers, never from a
world file. Small loopback HTTP servers stand in for the Llama Stack and vLLM processes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stagecheck.kube.client import Kube
from stagecheck.sandbox.controlplane import ControlPlane
from stagecheck.sandbox.standins.process import StandIns
from stagecheck.sandbox.world import apply_documents, load_documents
from tests import support
from tests.support import ROOT, LocalHandler, local_http

CRDS = ROOT / "stagecheck" / "sandbox" / "worlds" / "stage2" / "01-crds.yaml"
LLSD_NS, ISVC_NS, FAIL_NS = "llsd-test", "isvc-test", "isvc-fail-test"
# The world's Service names (sandbox.backends maps them to the data-plane processes)
LLSD_NAME, ISVC_NAME = "llama-stack", "mistral-24b-quantized"
LLSD_PATH = f"/apis/llamastack.io/v1alpha1/namespaces/{LLSD_NS}/llamastackdistributions"
PROVIDERS = [
    {
        "api": "inference",
        "provider_id": "vllm",
        "provider_type": "remote::vllm",
        "config": {"url": "http://model/v1", "max_tokens": 4096, "api_token": "********"},
        "health": {"status": "Error", "message": "Health check failed: connection refused"},
    },
    {
        "api": "vector_io",
        "provider_id": "milvus",
        "provider_type": "remote::milvus",
        "config": {"uri": "tcp://milvus:19530"},
        "health": {"status": "Not Implemented", "message": "Provider does not implement health"},
    },
]
answers: dict[str, bool] = {"llama-stack": True, "model": False}


class LlamaStackServer(LocalHandler):
    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        if not answers["llama-stack"]:
            self.reply(b"unavailable", 503)
        elif self.path == "/v1/providers":
            self.reply(json.dumps({"data": PROVIDERS}).encode())
        elif self.path == "/v1/version":
            self.reply(json.dumps({"version": "0.2.23"}).encode())
        else:
            self.reply(b"{}", 404)


class ModelServer(LocalHandler):
    def do_GET(self) -> None:  # noqa: N802
        if answers["model"] and self.path == "/v1/models":
            self.reply(json.dumps({"object": "list", "data": [{"id": "smollm2-135m"}]}).encode())
        else:
            self.reply(b"loading", 503)


@pytest.fixture(scope="module")
def standins(control_plane: ControlPlane, kube: Kube) -> Iterator[StandIns]:
    """The process, started before the CRDs exist (as ``scripts/sandbox up`` starts it)."""
    with local_http(LlamaStackServer) as stack, local_http(ModelServer) as model:
        _record_data_plane(
            control_plane.state,
            {"llamastack": f"http://127.0.0.1:{stack}", "llm": f"http://127.0.0.1:{model}/v1"},
        )
        process = StandIns(control_plane.state, ROOT)
        process.start()
        try:
            apply_documents(kube, load_documents(CRDS))
            for namespace in (LLSD_NS, ISVC_NS, FAIL_NS):
                namespaced = {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": namespace},
                }
                apply_documents(kube, [namespaced])
            yield process
        finally:
            process.stop()


def _record_data_plane(state: Path, services: dict[str, str]) -> None:
    """The data plane's record, as the sandbox writes it: where each service answers."""
    record = state / "dataplane" / "endpoints.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"services": services}))


def eventually(read: Callable[[], Any], timeout_s: float = 30.0) -> Any:
    return support.eventually(read, timeout_s, 0.05)


def conditions(obj: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {
        c["type"]: (c["status"], c.get("reason", ""), c.get("message", ""))
        for c in (obj.get("status") or {}).get("conditions") or []
    }


def _quota(kube: Kube, namespace: str, pods: int) -> None:
    """A pod quota: the Deployment's pods beyond it are never created (ReplicaSet FailedCreate)."""
    path = f"/api/v1/namespaces/{namespace}/resourcequotas"
    kube.create(
        path,
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "pods"},
            "spec": {"hard": {"pods": str(pods)}},
        },
    )
    assert eventually(lambda: (kube.get(f"{path}/pods").get("status") or {}).get("hard"))


def _llsd(replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "llamastack.io/v1alpha1",
        "kind": "LlamaStackDistribution",
        "metadata": {"name": LLSD_NAME, "namespace": LLSD_NS},
        "spec": {
            "replicas": replicas,
            "server": {
                "distribution": {"name": "rh-dev"},
                "containerSpec": {
                    "name": "llamastack",
                    "port": 8321,
                    "env": [{"name": "INFERENCE_MODEL", "value": "m"}],
                },
                "podOverrides": {"serviceAccountName": "rag-workload-sa"},
            },
        },
    }


@pytest.fixture(scope="module")
def llsd_phases(standins: StandIns, kube: Kube) -> list[tuple[str, str]]:
    """Every (phase, DeploymentReady message) the LLSD shows, in order: it wants 2 replicas
    where the namespace's quota allows 1, then is scaled to 1."""
    _quota(kube, LLSD_NS, 1)
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "rag-workload-sa"},
    }
    kube.create(f"/api/v1/namespaces/{LLSD_NS}/serviceaccounts", account)
    kube.create(LLSD_PATH, _llsd(2))
    seen: list[tuple[str, str]] = []

    def observe(until: str) -> bool:
        status = kube.get(f"{LLSD_PATH}/{LLSD_NAME}").get("status") or {}
        if status.get("phase"):
            now = (status["phase"], conditions({"status": status})["DeploymentReady"][2])
            if not seen or seen[-1] != now:
                seen.append(now)
        return bool(seen) and until in seen[-1][1]

    assert eventually(lambda: observe("1/2")), seen
    kube.patch(f"{LLSD_PATH}/{LLSD_NAME}", {"spec": {"replicas": 1}})
    assert eventually(lambda: observe("Deployment is ready")), seen
    return seen


def test_the_llsd_is_pending_then_initializing_then_ready_as_the_deployment_moves(
    llsd_phases: list[tuple[str, str]],
) -> None:
    """updateDeploymentStatus: missing -> Pending; readyReplicas 0 -> Initializing "pending";
    fewer than spec.replicas -> "scaling: R/N"; equal -> Ready."""
    phases = [phase for phase, _ in llsd_phases]
    assert phases[0] == "Pending" and llsd_phases[0][1] == "Deployment is pending"
    assert ("Initializing", "Deployment is scaling: 1/2 replicas ready") in llsd_phases
    assert llsd_phases[-1] == ("Ready", "Deployment is ready")
    assert phases.index("Initializing") < phases.index("Ready")


def test_a_ready_llsd_carries_the_servers_providers_and_version(
    llsd_phases: list[tuple[str, str]], standins: StandIns, kube: Kube
) -> None:
    def copied() -> dict[str, Any] | None:
        status = kube.get(f"{LLSD_PATH}/{LLSD_NAME}")["status"]
        return status if status["distributionConfig"].get("providers") else None

    status = eventually(copied)
    assert status, kube.get(f"{LLSD_PATH}/{LLSD_NAME}")
    # data[] as the server sent it, under provider_id (ProviderInfo's JSON names)
    assert status["distributionConfig"]["providers"] == PROVIDERS
    assert status["distributionConfig"]["activeDistribution"] == "rh-dev"
    assert "rh-dev" in status["distributionConfig"]["availableDistributions"]
    assert status["version"]["llamaStackServerVersion"] == "0.2.23"
    assert status["version"]["operatorVersion"] == "0.3.0"
    assert status["availableReplicas"] == 1
    assert status["serviceURL"] == f"http://llama-stack-service.{LLSD_NS}.svc.cluster.local:8321"
    found = conditions({"status": status})
    assert found["DeploymentReady"] == ("True", "DeploymentReady", "Deployment is ready")
    assert found["ServiceReady"] == ("True", "ServiceReady", "Service is ready")
    # True although a provider's health is Error: the operator copies health, never judges it
    assert found["HealthCheck"] == ("True", "HealthCheckPassed", "Health check passed")


def test_the_operators_deployment_and_service_are_built_as_v0_3_0_builds_them(
    llsd_phases: list[tuple[str, str]], kube: Kube
) -> None:
    deployment = kube.get(f"/apis/apps/v1/namespaces/{LLSD_NS}/deployments/{LLSD_NAME}")
    labels = {"app": "llama-stack", "app.kubernetes.io/instance": LLSD_NAME}
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    template = deployment["spec"]["template"]
    assert template["metadata"]["labels"] == labels
    # the operator cannot annotate its pods (no such spec field): no sidecar.istio.io/inject
    assert not (template["metadata"].get("annotations") or {})
    (container,) = template["spec"]["containers"]
    assert container["name"] == "llamastack"
    assert [p["containerPort"] for p in container["ports"]] == [8321]
    assert container["startupProbe"]["httpGet"]["path"] == "/v1/health"
    assert [e["name"] for e in container["env"]] == ["HF_HOME", "INFERENCE_MODEL"]
    assert template["spec"]["serviceAccountName"] == "rag-workload-sa"
    assert deployment["metadata"]["ownerReferences"][0]["kind"] == "LlamaStackDistribution"
    service = kube.get(f"/api/v1/namespaces/{LLSD_NS}/services/llama-stack-service")
    assert service["spec"]["selector"] == labels
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("http", 8321, 8321)
    ]


def test_an_unknown_distribution_fails_the_llsd_and_makes_no_deployment(
    standins: StandIns, kube: Kube
) -> None:
    """The RHOAI build knows only rh-dev: validateDistribution refuses "starter"."""
    body = _llsd(1)
    body["metadata"]["name"] = "upstream-name"
    body["spec"]["server"]["distribution"] = {"name": "starter"}
    kube.create(LLSD_PATH, body)
    status = eventually(
        lambda: (kube.get(f"{LLSD_PATH}/upstream-name").get("status") or {}).get("phase")
    )
    assert status == "Failed"
    found = conditions(kube.get(f"{LLSD_PATH}/upstream-name"))
    assert found["DeploymentReady"] == (
        "False",
        "DeploymentFailed",
        "Resource reconciliation failed: failed to reconcile Deployment: failed to validate "
        "distribution: starter. Distribution name not supported",
    )
    assert kube.get_or_none(f"/apis/apps/v1/namespaces/{LLSD_NS}/deployments/upstream-name") is None
    kube.delete(f"{LLSD_PATH}/upstream-name")


ISVC_PATH = "/apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices"


def _isvc(namespace: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": ISVC_NAME,
            "namespace": namespace,
            "labels": {"opendatahub.io/dashboard": "true"},
            "annotations": {
                "serving.kserve.io/deploymentMode": "Serverless",
                "sidecar.istio.io/inject": "true",
                **(annotations or {}),
            },
        },
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "vLLM"},
                    "runtime": "vllm-runtime",
                    "storageUri": "oci://registry.example.com/m:latest",
                }
            }
        },
    }


def test_the_isvc_is_ready_only_once_the_model_server_answers(
    standins: StandIns, kube: Kube
) -> None:
    path = ISVC_PATH.format(ns=ISVC_NS)
    answers["model"] = False
    kube.create(path, _isvc(ISVC_NS))
    deployment_path = (
        f"/apis/apps/v1/namespaces/{ISVC_NS}/deployments/{ISVC_NAME}-predictor-00001-deployment"
    )

    def available() -> bool:
        found = kube.get_or_none(deployment_path)
        return any(
            c["type"] == "Available" and c["status"] == "True"
            for c in ((found or {}).get("status") or {}).get("conditions") or []
        )

    assert eventually(available)
    standins.await_settled()
    time.sleep(4)  # past the stand-in's answer cache: the model server was asked again
    waiting = kube.get(f"{path}/{ISVC_NAME}")
    found = conditions(waiting)
    # pods run, the server does not answer: Knative's revision is not ready
    assert found["PredictorReady"][0] == "Unknown", found
    assert found["IngressReady"] == ("Unknown", "Predictor ingress not created", "")
    assert found["Ready"][0] == "Unknown"
    assert waiting["status"]["modelStatus"]["transitionStatus"] == "InProgress"
    assert waiting["status"]["modelStatus"]["states"] == {
        "activeModelState": "",
        "targetModelState": "Pending",
    }
    assert "url" not in waiting["status"]

    answers["model"] = True
    loaded = eventually(
        lambda: (
            (kube.get(f"{path}/{ISVC_NAME}")["status"].get("modelStatus") or {}).get(
                "transitionStatus"
            )
            == "UpToDate"
        )
    )
    status = kube.get(f"{path}/{ISVC_NAME}")["status"]
    assert loaded, status
    found = conditions({"status": status})
    for ready in (
        "PredictorReady",
        "IngressReady",
        "Ready",
        "RoutesReady",
        "LatestDeploymentReady",
    ):
        assert found[ready][0] == "True", (ready, found)
    assert status["modelStatus"]["states"] == {
        "activeModelState": "Loaded",
        "targetModelState": "Loaded",
    }
    assert status["modelStatus"]["copies"] == {"failedCopies": 0, "totalCopies": 1}
    assert status["url"] == f"https://{ISVC_NAME}-{ISVC_NS}.apps.sandbox.local"
    assert status["address"]["url"] == f"http://{ISVC_NAME}.{ISVC_NS}.svc.cluster.local"
    predictor = status["components"]["predictor"]
    revision = f"{ISVC_NAME}-predictor-00001"
    assert predictor["latestCreatedRevision"] == predictor["latestReadyRevision"] == revision
    assert predictor["url"] == f"https://{ISVC_NAME}-predictor-{ISVC_NS}.apps.sandbox.local"
    assert status["deploymentMode"] == "Serverless"


def test_the_predictor_pods_carry_the_isvcs_inject_annotation_and_labels(
    standins: StandIns, kube: Kube
) -> None:
    deployment = kube.get(
        f"/apis/apps/v1/namespaces/{ISVC_NS}/deployments/{ISVC_NAME}-predictor-00001-deployment"
    )
    template = deployment["spec"]["template"]
    labels = template["metadata"]["labels"]
    assert labels["serving.kserve.io/inferenceservice"] == ISVC_NAME
    assert labels["component"] == "predictor"
    assert labels["serving.knative.dev/revision"] == f"{ISVC_NAME}-predictor-00001"
    assert labels["opendatahub.io/dashboard"] == "true"  # the ISVC's own label
    assert template["metadata"]["annotations"]["sidecar.istio.io/inject"] == "true"
    names = [c["name"] for c in template["spec"]["containers"]]
    assert names == ["kserve-container", "queue-proxy"]  # never istio-proxy: the mesh adds it
    service = kube.get(f"/api/v1/namespaces/{ISVC_NS}/services/{ISVC_NAME}-predictor")
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(80, 8080)]


def test_an_isvc_whose_revision_never_gets_a_pod_fails_to_load(
    standins: StandIns, kube: Kube
) -> None:
    """No pods and a Knative condition False (the progress deadline passed): FailedToLoad."""
    _quota(kube, FAIL_NS, 0)
    path = ISVC_PATH.format(ns=FAIL_NS)
    kube.create(path, _isvc(FAIL_NS, {"serving.knative.dev/progress-deadline": "3s"}))

    def model_state() -> str | None:
        status = kube.get(f"{path}/{ISVC_NAME}").get("status") or {}
        return ((status.get("modelStatus") or {}).get("states") or {}).get("targetModelState")

    assert eventually(lambda: model_state() == "Pending", 15)  # no pods yet, nothing failed
    assert eventually(lambda: model_state() == "FailedToLoad", 60), kube.get(f"{path}/{ISVC_NAME}")
    status = kube.get(f"{path}/{ISVC_NAME}")["status"]
    assert status["modelStatus"]["transitionStatus"] == "BlockedByFailedLoad"
    found = conditions({"status": status})
    assert found["PredictorReady"][:2] == ("False", "RevisionFailed"), found
    assert found["Ready"][0] == "False"
    assert "url" not in status


def test_a_server_that_stops_answering_clears_the_providers_and_health_stays_true(
    llsd_phases: list[tuple[str, str]], standins: StandIns, kube: Kube
) -> None:
    """getProviderInfo failing only clears the list; HealthCheck follows the Deployment."""
    answers["llama-stack"] = False
    try:
        cleared = eventually(
            lambda: (
                "providers"
                not in kube.get(f"{LLSD_PATH}/{LLSD_NAME}")["status"]["distributionConfig"]
            )
        )
        status = kube.get(f"{LLSD_PATH}/{LLSD_NAME}")["status"]
        assert cleared, status
        assert status["phase"] == "Ready"
        assert conditions({"status": status})["HealthCheck"][0] == "True"
        assert status["version"]["llamaStackServerVersion"] == "0.2.23"  # kept on failure
    finally:
        answers["llama-stack"] = True
    back = eventually(
        lambda: kube.get(f"{LLSD_PATH}/{LLSD_NAME}")["status"]["distributionConfig"].get(
            "providers"
        )
    )
    assert back == PROVIDERS  # the next call that answers brings them back


def test_a_settled_world_sees_no_writes(
    llsd_phases: list[tuple[str, str]], standins: StandIns, kube: Kube
) -> None:
    standins.await_settled()
    watched = [
        f"{LLSD_PATH}/{LLSD_NAME}",
        f"/apis/apps/v1/namespaces/{LLSD_NS}/deployments/{LLSD_NAME}",
        f"/api/v1/namespaces/{LLSD_NS}/services/llama-stack-service",
        f"{ISVC_PATH.format(ns=ISVC_NS)}/{ISVC_NAME}",
        f"/api/v1/namespaces/{ISVC_NS}/services/{ISVC_NAME}-predictor",
    ]
    before = {p: kube.get(p)["metadata"]["resourceVersion"] for p in watched}
    time.sleep(4)  # several passes, and past the answer cache: the servers were asked again
    after = {p: kube.get(p)["metadata"]["resourceVersion"] for p in watched}
    assert after == before
    heartbeat = json.loads(standins.heartbeat.read_text())
    assert heartbeat["writes"] == 0
    assert heartbeat["controllers"]["llamastack-operator-standin"] is None
    assert heartbeat["controllers"]["kserve-knative-standin"] is None
