"""The mesh stand-ins (OpenShift Service Mesh 2.5) against a real control plane: the API
server's own admission chain calls the stand-in injector through the registered
MutatingWebhookConfiguration. Expected values come from maistra/istio-operator@maistra-2.5 and
maistra/istio@maistra-2.5 (named at each test), never from the sandbox's world files."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from stagecheck.errors import StagecheckError
from stagecheck.kube.client import JsonObject, Kube
from stagecheck.sandbox.controlplane import ControlPlane
from stagecheck.sandbox.standins.mesh_injector import InjectorConfig, inject_required
from stagecheck.sandbox.standins.process import StandIns
from stagecheck.sandbox.world import apply_documents, load_documents
from tests.support import ROOT, eventually

CRDS = ROOT / "stagecheck" / "sandbox" / "worlds" / "stage2" / "01-crds.yaml"
MESH = "mesh-test-system"
SMCP = "mesh-test-smcp"
MEMBER = "mesh-test-member"
OUTSIDER = "mesh-test-outsider"
ORPHAN = "mesh-test-orphan"
MAISTRA = "/apis/maistra.io"
SMCP_PATH = f"{MAISTRA}/v2/namespaces/{MESH}/servicemeshcontrolplanes/{SMCP}"
SMMR_PATH = f"{MAISTRA}/v1/namespaces/{MESH}/servicemeshmemberrolls/default"
SMM_PATH = f"{MAISTRA}/v1/namespaces/{MEMBER}/servicemeshmembers/default"
WEBHOOK_PATH = (
    f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/istiod-{SMCP}-{MESH}"
)


def _namespace(name: str) -> JsonObject:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


@pytest.fixture(scope="module")
def mesh(control_plane: ControlPlane, kube: Kube) -> Iterator[StandIns]:
    apply_documents(kube, load_documents(CRDS))
    apply_documents(kube, [_namespace(n) for n in (MESH, MEMBER, OUTSIDER)])
    apply_documents(
        kube,
        [
            {
                "apiVersion": "maistra.io/v2",
                "kind": "ServiceMeshControlPlane",
                "metadata": {"name": SMCP, "namespace": MESH},
                "spec": {"version": "v2.5"},
            },
            {
                "apiVersion": "maistra.io/v1",
                "kind": "ServiceMeshMemberRoll",
                "metadata": {"name": "default", "namespace": MESH},
                "spec": {"members": [MEMBER]},
            },
        ],
    )
    process = StandIns(control_plane.state, ROOT)
    process.start()
    try:
        assert eventually(lambda: _ready(kube.get(SMCP_PATH)), 60), kube.get(SMCP_PATH)
        process.await_settled()
        yield process
        # Uninstalled: the webhook registration goes with its control plane, and a roll
        # without a control plane deletes the members it made (memberroll/controller.go step
        # 4), whose finalizer takes member-of off the namespace.
        kube.delete(SMCP_PATH)
        assert eventually(lambda: kube.get_or_none(WEBHOOK_PATH) is None)
        assert eventually(lambda: kube.get_or_none(SMM_PATH) is None)
        kube.delete(SMMR_PATH)
        labels = kube.get(f"/api/v1/namespaces/{MEMBER}")["metadata"].get("labels") or {}
        assert "maistra.io/member-of" not in labels
    finally:
        process.stop()
        kube.delete(WEBHOOK_PATH)  # no webhook answers any more: later tests create pods


def _condition(obj: JsonObject, type_: str) -> JsonObject:
    found = [c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_]
    assert found, f"{obj['kind']} {obj['metadata']['name']} has no {type_} condition: {obj}"
    return dict(found[0])


def _ready(obj: JsonObject) -> bool:
    ready = [c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"]
    return bool(ready) and ready[0]["status"] == "True"


def _triple(obj: JsonObject, type_: str) -> tuple[str, str, str]:
    found = _condition(obj, type_)
    return (found["status"], found.get("reason", ""), found.get("message", ""))


_pods = 0


def _pod(
    kube: Kube,
    namespace: str,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    host_network: bool = False,
) -> JsonObject:
    """Create a pod as a user would and return it as the API server stored it."""
    global _pods
    _pods += 1
    meta: JsonObject = {"name": f"probe-{_pods}", "labels": {"app": "probe", **(labels or {})}}
    if annotations:
        meta["annotations"] = annotations
    spec: JsonObject = {"containers": [{"name": "app", "image": "registry.example.com/app:1"}]}
    if host_network:
        spec["hostNetwork"] = True
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
    deadline = time.monotonic() + 30
    while True:  # a new namespace's default ServiceAccount arrives a moment after it
        try:
            return kube.create(f"/api/v1/namespaces/{namespace}/pods", body)
        except StagecheckError as error:
            if "serviceaccount" not in str(error).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _containers(pod: JsonObject) -> list[str]:
    return [c["name"] for c in pod["spec"]["containers"]]


def _set_auto_inject(kube: Kube, mesh: StandIns, value: bool | None) -> None:
    kube.patch(SMCP_PATH, {"spec": {"proxy": {"injection": {"autoInject": value}}}})
    mesh.await_settled()


def test_the_roll_makes_the_member_and_the_member_labels_its_namespace(
    mesh: StandIns, kube: Kube
) -> None:
    """memberroll/controller.go ensureMemberExists; member/namespace_reconciler.go."""
    member = kube.get(SMM_PATH)
    assert member["metadata"]["annotations"]["maistra.io/created-by"] == (
        "servicemeshmemberroll-controller"
    )
    assert member["spec"]["controlPlaneRef"] == {"name": SMCP, "namespace": MESH}
    assert "maistra.io/istio-operator" in member["metadata"]["finalizers"]
    labels = kube.get(f"/api/v1/namespaces/{MEMBER}")["metadata"]["labels"]
    assert labels["maistra.io/member-of"] == MESH
    outsider = kube.get(f"/api/v1/namespaces/{OUTSIDER}")["metadata"].get("labels") or {}
    assert "maistra.io/member-of" not in outsider


def test_statuses_are_written_as_the_operator_writes_them(mesh: StandIns, kube: Kube) -> None:
    """controlplane/status.go, readiness.go; memberroll/controller.go; member/controller.go
    ``updateStatus(ctx, member, true, true, "", "")``."""
    smcp = kube.get(SMCP_PATH)
    installed = ("True", "InstallSuccessful", "Successfully installed all mesh components")
    assert _triple(smcp, "Installed") == installed
    assert _triple(smcp, "Reconciled") == installed
    assert _triple(smcp, "Ready") == (
        "True",
        "ComponentsReady",
        "All component deployments are Available",
    )
    status = smcp["status"]
    assert status["readiness"]["components"] == {"ready": ["istiod"], "unready": [], "pending": []}
    assert status["annotations"]["readyComponentCount"] == "1/1"
    assert status["observedGeneration"] == smcp["metadata"]["generation"]

    roll = kube.get(SMMR_PATH)["status"]
    assert roll["members"] == [MEMBER]
    assert roll["configuredMembers"] == [MEMBER]
    assert roll["pendingMembers"] == []
    assert roll["annotations"]["configuredMemberCount"] == "1/1"
    assert roll["meshReconciledVersion"] == (
        f"{status['operatorVersion']}-{status['observedGeneration']}"
    )
    (summary,) = roll["memberStatuses"]
    assert summary["namespace"] == MEMBER
    assert [(c["type"], c["status"]) for c in summary["conditions"]] == [("Reconciled", "True")]
    (ready,) = roll["conditions"]
    assert (ready["type"], ready["status"], ready["reason"], ready["message"]) == (
        "Ready",
        "True",
        "Configured",
        "All namespaces have been configured successfully",
    )

    member = kube.get(SMM_PATH)
    for type_ in ("Reconciled", "Ready"):
        assert _triple(member, type_) == ("True", "", "")
    assert member["status"]["meshReconciledVersion"] == roll["meshReconciledVersion"]


def test_the_webhook_is_registered_with_the_2_5_selectors(mesh: StandIns, kube: Kube) -> None:
    """resources/helm/v2.5/istio-control/istio-discovery/templates/mutatingwebhook.yaml."""
    (webhook,) = kube.get(WEBHOOK_PATH)["webhooks"]
    assert webhook["name"] == "sidecar-injector.istio.io"
    assert webhook["failurePolicy"] == "Fail"
    assert webhook["rules"][0]["operations"] == ["CREATE"]
    assert webhook["rules"][0]["resources"] == ["pods"]
    assert webhook["namespaceSelector"]["matchExpressions"] == [
        {"key": "maistra.io/member-of", "operator": "In", "values": [MESH]},
        {"key": "maistra.io/ignore-namespace", "operator": "DoesNotExist"},
        {"key": "istio-injection", "operator": "NotIn", "values": ["disabled"]},
        {"key": "istio-env", "operator": "DoesNotExist"},
    ]
    assert webhook["objectSelector"]["matchExpressions"] == [
        {"key": "app", "operator": "NotIn", "values": ["istiod"]}
    ]
    assert webhook["clientConfig"]["url"].startswith("https://127.0.0.1:")
    assert webhook["clientConfig"]["caBundle"]
    injector = kube.get(f"/api/v1/namespaces/{MESH}/configmaps/istio-sidecar-injector-{SMCP}")
    assert "policy: disabled" in injector["data"]["config"]  # autoInject defaults to false


@pytest.mark.parametrize(
    "labels, annotations",
    [
        ({}, {"sidecar.istio.io/inject": "true"}),
        ({"sidecar.istio.io/inject": "true"}, {}),
        ({}, {"sidecar.istio.io/inject": "Yes"}),
    ],
    ids=["annotation", "label", "yes-any-case"],
)
def test_a_pod_asking_for_the_sidecar_in_a_member_namespace_gets_it_from_admission(
    mesh: StandIns, kube: Kube, labels: dict[str, str], annotations: dict[str, str]
) -> None:
    """inject.go injectRequired; files/injection-template.yaml (2.5: no init container)."""
    pod = _pod(kube, MEMBER, labels, annotations)
    assert _containers(pod) == ["app", "istio-proxy"]
    assert not pod["spec"].get("initContainers")
    proxy = pod["spec"]["containers"][1]
    assert {"containerPort": 15090, "protocol": "TCP", "name": "http-envoy-prom"} in proxy["ports"]
    assert proxy["readinessProbe"]["httpGet"]["path"] == "/healthz/ready"
    assert proxy["readinessProbe"]["httpGet"]["port"] == 15021
    meta = pod["metadata"]
    assert meta["labels"]["security.istio.io/tlsMode"] == "istio"
    assert meta["labels"]["service.istio.io/canonical-name"] == "probe"  # from label app
    assert meta["labels"]["service.istio.io/canonical-revision"] == "latest"
    assert meta["labels"]["maistra-version"].startswith("2.5")
    assert meta["annotations"]["istio.io/rev"] == SMCP
    assert meta["annotations"]["kubectl.kubernetes.io/default-container"] == "app"
    assert meta["annotations"]["k8s.v1.cni.cncf.io/networks"] == "v2-5-istio-cni"
    status = json.loads(meta["annotations"]["sidecar.istio.io/status"])
    assert status["containers"] == ["istio-proxy"]
    assert status["initContainers"] is None
    assert status["revision"] == SMCP
    assert set(status["volumes"]) <= {v["name"] for v in pod["spec"]["volumes"]}


@pytest.mark.parametrize(
    "labels, annotations, host_network",
    [
        ({"sidecar.istio.io/inject": "false"}, {"sidecar.istio.io/inject": "true"}, False),
        ({}, {"sidecar.istio.io/inject": "enabled"}, False),
        ({}, {"sidecar.istio.io/inject": "true"}, True),
        ({}, {}, False),
    ],
    ids=["label-false-beats-annotation-true", "unknown-value", "host-network", "default-policy"],
)
def test_a_pod_in_a_member_namespace_without_a_yes_keeps_its_containers(
    mesh: StandIns,
    kube: Kube,
    labels: dict[str, str],
    annotations: dict[str, str],
    host_network: bool,
) -> None:
    """inject.go injectRequired: the label wins; only y/yes/true/on inject; hostNetwork never;
    no value: the policy, ``disabled`` while autoInject is at its default (false)."""
    pod = _pod(kube, MEMBER, labels, annotations, host_network)
    assert _containers(pod) == ["app"]
    assert "sidecar.istio.io/status" not in (pod["metadata"].get("annotations") or {})


def test_a_pod_in_a_namespace_outside_the_mesh_is_never_sent_to_the_injector(
    mesh: StandIns, kube: Kube
) -> None:
    """The API server's namespaceSelector (maistra.io/member-of In [meshNs]) decides."""
    pod = _pod(kube, OUTSIDER, {"sidecar.istio.io/inject": "true"})
    assert _containers(pod) == ["app"]


def test_auto_inject_true_injects_a_pod_that_asks_nothing(mesh: StandIns, kube: Kube) -> None:
    """pkg/apis/maistra/conversion/proxy.go: autoInject true -> policy ``enabled``; a new
    generation: Reconciled True/ReconcileSuccessful (controlplane/status.go)."""
    try:
        _set_auto_inject(kube, mesh, True)
        injector = kube.get(f"/api/v1/namespaces/{MESH}/configmaps/istio-sidecar-injector-{SMCP}")
        assert "policy: enabled" in injector["data"]["config"]
        assert _containers(_pod(kube, MEMBER)) == ["app", "istio-proxy"]
        # an explicit no still wins over the policy
        assert _containers(_pod(kube, MEMBER, {"sidecar.istio.io/inject": "false"})) == ["app"]
        smcp = kube.get(SMCP_PATH)
        assert _triple(smcp, "Reconciled") == (
            "True",
            "ReconcileSuccessful",
            "Successfully reconciled",
        )
        assert _triple(smcp, "Installed")[1] == "InstallSuccessful"
        assert _ready(kube.get(SMMR_PATH))  # the member caught up with the new generation
    finally:
        _set_auto_inject(kube, mesh, None)
    assert _containers(_pod(kube, MEMBER)) == ["app"]


def test_a_removed_member_of_label_is_put_back(mesh: StandIns, kube: Kube) -> None:
    """member/controller.go: the Namespace watch reconciles the member again."""
    path = f"/api/v1/namespaces/{MEMBER}"
    kube.patch(path, {"metadata": {"labels": {"maistra.io/member-of": None}}})
    mesh.await_settled()
    assert kube.get(path)["metadata"]["labels"]["maistra.io/member-of"] == MESH


def test_a_member_of_a_missing_control_plane_says_so(mesh: StandIns, kube: Kube) -> None:
    """member/controller.go reportError(eventReasonControlPlaneMissing, ...)."""
    apply_documents(kube, [_namespace(ORPHAN)])
    kube.create(
        f"{MAISTRA}/v1/namespaces/{ORPHAN}/servicemeshmembers",
        {
            "apiVersion": "maistra.io/v1",
            "kind": "ServiceMeshMember",
            "metadata": {"name": "default"},
            "spec": {"controlPlaneRef": {"name": "no-such-smcp", "namespace": MESH}},
        },
    )
    mesh.await_settled()
    member = kube.get(f"{MAISTRA}/v1/namespaces/{ORPHAN}/servicemeshmembers/default")
    missing = (
        "False",
        "ErrorControlPlaneMissing",
        "the referenced ServiceMeshControlPlane object does not exist",
    )
    assert _triple(member, "Reconciled") == missing
    assert _triple(member, "Ready") == missing
    labels = kube.get(f"/api/v1/namespaces/{ORPHAN}")["metadata"].get("labels") or {}
    assert "maistra.io/member-of" not in labels
    # the roll counts it as a member of its mesh that is not configured
    roll = kube.get(SMMR_PATH)["status"]
    assert ORPHAN in roll["members"] and ORPHAN not in roll["configuredMembers"]
    assert _triple(kube.get(SMMR_PATH), "Ready")[:2] == ("False", "ReconcileError")
    kube.delete(f"{MAISTRA}/v1/namespaces/{ORPHAN}/servicemeshmembers/default")
    assert eventually(
        lambda: (
            kube.get_or_none(f"{MAISTRA}/v1/namespaces/{ORPHAN}/servicemeshmembers/default") is None
        )
    )
    mesh.await_settled()
    assert _ready(kube.get(SMMR_PATH))


def test_a_settled_mesh_is_not_rewritten(mesh: StandIns, kube: Kube) -> None:
    mesh.await_settled()
    paths = [
        SMCP_PATH,
        SMMR_PATH,
        SMM_PATH,
        WEBHOOK_PATH,
        f"/api/v1/namespaces/{MEMBER}",
        f"/api/v1/namespaces/{MESH}/configmaps/istio-sidecar-injector-{SMCP}",
        f"/apis/apps/v1/namespaces/{MESH}/deployments/istiod-{SMCP}",
    ]

    def versions() -> list[str]:
        return [kube.get(p)["metadata"]["resourceVersion"] for p in paths]

    before = versions()
    mesh.await_settled()
    assert versions() == before


@pytest.mark.parametrize(
    "config, labels, expected",
    [
        (
            InjectorConfig("enabled", never=({"matchLabels": {"job": "batch"}},)),
            {"job": "batch"},
            False,
        ),
        (
            InjectorConfig("disabled", always=({"matchLabels": {"tier": "web"}},)),
            {"tier": "web"},
            True,
        ),
        (InjectorConfig("enabled", never=({},)), {}, True),  # an empty selector matches nothing
        (InjectorConfig("off"), {}, False),  # an illegal policy turns injection off
        (
            InjectorConfig("enabled", never=({"matchLabels": {"job": "batch"}},)),
            {"job": "batch", "sidecar.istio.io/inject": "true"},
            True,
        ),  # a value skips the selectors
    ],
    ids=["never-selector", "always-selector", "empty-selector", "illegal-policy", "value-first"],
)
def test_the_selectors_and_the_policy_decide_only_without_a_value(
    config: InjectorConfig, labels: dict[str, str], expected: bool
) -> None:
    """inject.go injectRequired: neverInjectSelector, then alwaysInjectSelector, then the
    policy, consulted only when the pod gives no value."""
    pod = {"metadata": {"labels": labels}, "spec": {}}
    assert inject_required(config, pod, "apps") is expected
    assert inject_required(config, pod, "kube-system") is False  # IgnoredNamespaces
