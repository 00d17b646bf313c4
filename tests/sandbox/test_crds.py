"""The stage-2 CRDs (stagecheck/sandbox/worlds/stage2/01-crds.yaml) on a real API server: they
are structural, the whole stage-2 world is valid under them, and the API server refuses or
prunes what the real CRDs refuse or prune. Expected values come from the operators' API types
(named in each test), not from the world files.

The CRDs get a control plane of their own: the shared one (tests/conftest.py) serves an older
OGXServer CRD for the vocabulary features, and a CRD's stored versions cannot be swapped."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stagecheck.errors import KubeApiError
from stagecheck.kube.client import Kube
from stagecheck.sandbox.controlplane import ControlPlane
from stagecheck.sandbox.world import apply_documents, load_documents
from tests.support import ROOT, Run, run_pytest

STAGE2 = ROOT / "stagecheck" / "sandbox" / "worlds" / "stage2"
CRDS = STAGE2 / "01-crds.yaml"
NS = "private-ai-demo"
# The ${...} values the sandbox fills into the world (dataplane.py), as a healthy run has them.
VALUES = {
    "llama_stack_version": "0.3.0",
    "inference_health": "OK",
    "vector_io_health": "OK",
    "s3_access_key": "access",
    "s3_secret_key": "secret",
}
EXPECTED_KINDS = {
    "LlamaStackDistribution",
    "OGXServer",
    "InferenceService",
    "DataSciencePipelinesApplication",
    "ServiceMeshControlPlane",
    "ServiceMeshMember",
    "ServiceMeshMemberRoll",
    "PeerAuthentication",
    "Route",
    "DoclingServe",
}


@pytest.fixture(scope="module")
def stage2_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    plane = ControlPlane(ROOT, tmp_path_factory.mktemp("crds-plane"), name="stagecheck-crds")
    plane.up()
    try:
        yield plane
    finally:
        plane.down()


@pytest.fixture(scope="module")
def stage2(stage2_plane: ControlPlane) -> Iterator[Kube]:
    """The private control plane holding the whole stage-2 world (CRDs first)."""
    kube = stage2_plane.connect()
    try:
        apply_documents(kube, load_documents(STAGE2, values=VALUES))
        yield kube
    finally:
        kube.close()


def crd_documents() -> list[dict[str, Any]]:
    return load_documents(CRDS)


def rejection(kube: Kube, path: str, body: dict[str, Any]) -> KubeApiError:
    """The error the API server answers a server-side apply of ``body`` with."""
    with pytest.raises(KubeApiError) as caught:
        kube.apply(path, body)
    return caught.value


DOCLING = "/apis/docling.github.io/v1alpha1/namespaces/private-ai-demo/doclingserves"
LLSD = "/apis/llamastack.io/v1alpha1/namespaces/private-ai-demo/llamastackdistributions"
ROUTES = "/apis/route.openshift.io/v1/namespaces/private-ai-demo/routes"


def docling(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "docling.github.io/v1alpha1",
        "kind": "DoclingServe",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


def route(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "route.openshift.io/v1",
        "kind": "Route",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


# -- the CRDs themselves ---------------------------------------------------------------------
def test_the_file_defines_every_stage2_kind_without_a_wholly_open_schema() -> None:
    docs = crd_documents()
    assert {d["spec"]["names"]["kind"] for d in docs} == EXPECTED_KINDS
    for doc in docs:
        for version in doc["spec"]["versions"]:
            root = version["schema"]["openAPIV3Schema"]
            assert not root.get("x-kubernetes-preserve-unknown-fields"), doc["metadata"]["name"]
            assert {"spec", "status"} <= set(root["properties"]), doc["metadata"]["name"]
            assert version.get("subresources") == {"status": {}}, doc["metadata"]["name"]


def test_every_crd_is_structural_and_established(stage2: Kube) -> None:
    """An API server reports NonStructuralSchema=True on a CRD whose schema is not
    structural (and then neither prunes nor defaults); these must all be Established."""
    for doc in crd_documents():
        name = doc["metadata"]["name"]
        found = stage2.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        conditions = {c["type"]: c for c in found["status"]["conditions"]}
        assert "NonStructuralSchema" not in conditions, (name, conditions["NonStructuralSchema"])
        assert conditions["Established"]["status"] == "True", (name, conditions)


def test_every_document_of_the_stage2_world_applies_cleanly(stage2: Kube) -> None:
    """The fixture applied the world; here every object and written status is read back."""
    for doc in load_documents(STAGE2, values=VALUES):
        if doc["kind"] in EXPECTED_KINDS:
            group, _, version = doc["apiVersion"].rpartition("/")
            plural = next(
                d["spec"]["names"]["plural"]
                for d in crd_documents()
                if d["spec"]["names"]["kind"] == doc["kind"]
            )
            meta = doc["metadata"]
            path = f"/apis/{group}/{version}/namespaces/{meta['namespace']}/{plural}/{meta['name']}"
            found = stage2.get(path)
            if "status" in doc:
                assert found.get("status"), f"{doc['kind']} {doc['metadata']['name']}: no status"


# -- DoclingServe: docling-operator api/v1alpha1/doclingserve_types.go -----------------------
def test_a_doclingserve_without_an_engine_is_refused_with_the_api_message(stage2: Kube) -> None:
    error = rejection(
        stage2, f"{DOCLING}/no-engine", docling("no-engine", {"apiServer": {"image": "x:1"}})
    )
    assert error.status == 422 and error.reason == "Invalid"
    assert 'DoclingServe.docling.github.io "no-engine" is invalid' in error.api_message
    assert ("spec.engine", "Required value") in error.causes, error.causes
    assert stage2.get_or_none(f"{DOCLING}/no-engine") is None


def test_a_doclingserve_without_an_api_server_is_refused(stage2: Kube) -> None:
    body = docling("no-api-server", {"engine": {"local": {"numWorkers": 2}}})
    error = rejection(stage2, f"{DOCLING}/no-api-server", body)
    assert ("spec.apiServer", "Required value") in error.causes, error.causes


def test_a_doclingserve_engine_must_be_local_or_kfp_not_both(stage2: Kube) -> None:
    both = {"local": {"numWorkers": 2}, "kfp": {"endpoint": "https://kfp:8888"}}
    body = docling("both-engines", {"apiServer": {"image": "x:1"}, "engine": both})
    error = rejection(stage2, f"{DOCLING}/both-engines", body)
    assert "Only a Local or KFP Engine are allowed" in error.api_message
    neither = docling("no-engine-kind", {"apiServer": {"image": "x:1"}, "engine": {}})
    assert (
        "Only a Local or KFP Engine"
        in rejection(stage2, f"{DOCLING}/no-engine-kind", neither).api_message
    )


def test_a_doclingserve_gets_the_real_defaults(stage2: Kube) -> None:
    """numWorkers defaults to 2 and instances to 1; instances above 1 are refused."""
    created = stage2.apply(
        f"{DOCLING}/defaults", docling("defaults", {"apiServer": {}, "engine": {"local": {}}})
    )
    assert created["spec"]["engine"]["local"]["numWorkers"] == 2
    assert created["spec"]["apiServer"]["instances"] == 1
    assert created["spec"]["apiServer"]["image"] == "quay.io/docling-project/docling-serve:latest"
    two = docling("two", {"apiServer": {"image": "x:1", "instances": 2}, "engine": {"local": {}}})
    error = rejection(stage2, f"{DOCLING}/two", two)
    assert any(field == "spec.apiServer.instances" for field, _ in error.causes), error.causes


def test_a_doclingserve_condition_must_be_a_full_metav1_condition(stage2: Kube) -> None:
    """metav1.Condition: type, status (True/False/Unknown), reason, message and
    lastTransitionTime are all required; the real operator writes them all."""
    stage2.apply(
        f"{DOCLING}/conditions",
        docling("conditions", {"apiServer": {"image": "x:1"}, "engine": {"local": {}}}),
    )
    status = {
        "apiVersion": "docling.github.io/v1alpha1",
        "kind": "DoclingServe",
        "metadata": {"name": "conditions"},
        "status": {
            "conditions": [
                {"type": "DeploymentAvailable", "status": "true", "reason": "Min",
                 "lastTransitionTime": "2026-11-03T08:10:00Z"}
            ]
        },
    }  # fmt: skip
    error = rejection(stage2, f"{DOCLING}/conditions/status", status)
    fields = dict(error.causes)
    assert "status.conditions[0].status" in fields, error.causes
    assert "Unsupported value" in fields["status.conditions[0].status"]
    assert fields.get("status.conditions[0].message") == "Required value", error.causes


# -- LlamaStackDistribution: llama-stack-k8s-operator api/v1alpha1/llamastackdistribution_types.go
def llsd(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "llamastack.io/v1alpha1",
        "kind": "LlamaStackDistribution",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"server": {"distribution": {"name": "starter"}}},
    }


def test_an_llsd_status_written_with_providerID_loses_it_and_keeps_provider_id(
    stage2: Kube,
) -> None:
    """ProviderInfo's JSON key is ``provider_id``; the operator writes the whole status with
    Status().Update (a PUT), and the API server prunes fields its schema does not declare."""
    created = stage2.apply(f"{LLSD}/pruned", llsd("pruned"))
    provider = {
        "api": "inference",
        "provider_id": "vllm",
        "providerID": "vllm",
        "provider_type": "remote::vllm",
        "config": {"url": "http://vllm:8000/v1", "anything": {"nested": True}},
        "health": {"status": "OK", "message": ""},
    }
    body = copy.deepcopy(created)
    body["status"] = {"phase": "Ready", "distributionConfig": {"providers": [provider]}}
    stage2.replace(f"{LLSD}/pruned/status", body)
    written = stage2.get(f"{LLSD}/pruned")["status"]["distributionConfig"]["providers"][0]
    assert "providerID" not in written
    assert written["provider_id"] == "vllm"
    assert written["config"] == provider["config"]  # free-form JSON is kept, as in the real CRD


def test_an_llsd_phase_outside_the_real_enum_is_refused(stage2: Kube) -> None:
    created = stage2.apply(f"{LLSD}/phase", llsd("phase"))
    body = copy.deepcopy(created)
    body["status"] = {"phase": "Running"}
    with pytest.raises(KubeApiError) as caught:
        stage2.replace(f"{LLSD}/phase/status", body)
    fields = dict(caught.value.causes)
    assert "status.phase" in fields and "Unsupported value" in fields["status.phase"]
    for phase in ("Pending", "Initializing", "Ready", "Failed", "Terminating"):
        body = copy.deepcopy(stage2.get(f"{LLSD}/phase"))
        body["status"] = {"phase": phase}
        assert stage2.replace(f"{LLSD}/phase/status", body)["status"]["phase"] == phase


def test_an_llsd_without_a_distribution_is_refused(stage2: Kube) -> None:
    body = llsd("no-distribution")
    body["spec"]["server"] = {}
    error = rejection(stage2, f"{LLSD}/no-distribution", body)
    assert ("spec.server.distribution", "Required value") in error.causes, error.causes


# -- Route: openshift/api route/v1/types.go --------------------------------------------------
def test_a_route_with_an_invalid_tls_termination_is_refused(stage2: Kube) -> None:
    body = route("bad-tls", {"to": {"kind": "Service", "name": "x"}, "tls": {"termination": "ssl"}})
    error = rejection(stage2, f"{ROUTES}/bad-tls", body)
    fields = dict(error.causes)
    assert "spec.tls.termination" in fields, error.causes
    assert 'Unsupported value: "ssl"' in fields["spec.tls.termination"]
    for supported in ("edge", "reencrypt", "passthrough"):
        assert f'"{supported}"' in fields["spec.tls.termination"], fields


def test_a_route_needs_no_host_and_takes_the_real_status(stage2: Kube) -> None:
    """spec.host is optional (openshift-apiserver would fill it in); status.ingress[] holds
    one entry per router with its Admitted condition."""
    created = stage2.apply(f"{ROUTES}/no-host", route("no-host", {"to": {"name": "svc"}}))
    assert created["spec"]["to"] == {"kind": "Service", "name": "svc", "weight": 100}
    status = {
        "apiVersion": "route.openshift.io/v1",
        "kind": "Route",
        "metadata": {"name": "no-host"},
        "status": {
            "ingress": [
                {"host": "no-host-private-ai-demo.apps.example.com", "routerName": "default",
                 "wildcardPolicy": "None", "routerCanonicalHostname": "router.apps.example.com",
                 "conditions": [{"type": "Admitted", "status": "False",
                                 "reason": "HostAlreadyClaimed", "message": "older route wins",
                                 "lastTransitionTime": "2026-11-03T08:00:00Z"}]}
            ]
        },
    }  # fmt: skip
    written = stage2.apply(f"{ROUTES}/no-host/status", status)
    assert written["status"]["ingress"][0]["conditions"][0]["reason"] == "HostAlreadyClaimed"


def test_a_route_without_a_target_is_refused(stage2: Kube) -> None:
    error = rejection(stage2, f"{ROUTES}/no-target", route("no-target", {"host": "a.example"}))
    assert ("spec.to", "Required value") in error.causes, error.causes


# -- The apply step: the API server's own words, as one failure ------------------------------
@pytest.fixture(scope="module")
def rejected_run(
    stage2: Kube, stage2_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    target = ["--target", "sandbox", "--kubeconfig", str(stage2_plane.kubeconfig)]
    feature = str(ROOT / "tests" / "features" / "crds" / "rejected.feature")
    return run_pytest([*target, feature], Path(tmp_path_factory.mktemp("crds-run")))


def test_a_feature_applying_a_doclingserve_without_engine_fails_with_the_api_message(
    rejected_run: Run, stage2: Kube
) -> None:
    result = rejected_run.result(
        "A DoclingServe without an engine is refused with the API server's message"
    )
    assert result.outcome == "failed", rejected_run.output[-3000:]
    for fragment in (
        "DoclingServe private-ai-demo/docling-without-engine",
        "docling-without-engine/objects.yaml document 2",
        "HTTP 422 Invalid",
        "nothing of this set was applied",
        "- spec.engine: Required value",
    ):
        assert fragment in result.message, result.message
    assert "Traceback" not in result.message
    assert stage2.get_or_none(f"/api/v1/namespaces/{NS}/configmaps/must-not-exist-crds") is None


def test_a_world_status_with_a_misspelled_field_is_refused_not_dropped(stage2: Kube) -> None:
    """The sandbox writes world statuses by server-side apply, which refuses a field the
    schema does not declare (a PUT, as the operators use, would prune it instead)."""
    stage2.apply(f"{LLSD}/misspelled", llsd("misspelled"))
    status = {
        "apiVersion": "llamastack.io/v1alpha1",
        "kind": "LlamaStackDistribution",
        "metadata": {"name": "misspelled"},
        "status": {"phase": "Ready", "serviceUrl": "http://llama-stack-service:8321"},
    }
    error = rejection(stage2, f"{LLSD}/misspelled/status", status)
    assert ".status.serviceUrl: field not declared in schema" in error.api_message


# -- Required fields of the other kinds (each from its API type) -----------------------------
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (  # kserve pkg/apis/serving/v1beta1/inference_service.go: Predictor has no omitempty
            "/apis/serving.kserve.io/v1beta1/namespaces/private-ai-demo/inferenceservices/x",
            {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
             "metadata": {"name": "x", "namespace": NS}, "spec": {}},
            "spec.predictor",
        ),
        (  # data-science-pipelines-operator api/v1/dspipeline_types.go: ObjectStorage Required
            "/apis/datasciencepipelinesapplications.opendatahub.io/v1/namespaces/private-ai-demo/"
            "datasciencepipelinesapplications/x",
            {"apiVersion": "datasciencepipelinesapplications.opendatahub.io/v1",
             "kind": "DataSciencePipelinesApplication",
             "metadata": {"name": "x", "namespace": NS}, "spec": {"dspVersion": "v2"}},
            "spec.objectStorage",
        ),
        (  # maistra/istio-operator pkg/apis/maistra/v1/servicemeshmember_types.go
            "/apis/maistra.io/v1/namespaces/private-ai-demo/servicemeshmembers/x",
            {"apiVersion": "maistra.io/v1", "kind": "ServiceMeshMember",
             "metadata": {"name": "x", "namespace": NS}, "spec": {}},
            "spec.controlPlaneRef",
        ),
        (  # ogx-k8s-operator api/v1beta1/ogxserver_types.go: Distribution Required
            "/apis/ogx.io/v1beta1/namespaces/private-ai-demo/ogxservers/x",
            {"apiVersion": "ogx.io/v1beta1", "kind": "OGXServer",
             "metadata": {"name": "x", "namespace": NS}, "spec": {}},
            "spec.distribution",
        ),
    ],
)  # fmt: skip
def test_a_missing_required_field_is_refused(
    stage2: Kube, path: str, body: dict[str, Any], field: str
) -> None:
    error = rejection(stage2, path, body)
    assert (field, "Required value") in error.causes, error.causes
