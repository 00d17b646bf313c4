"""The stand-in kubelet and the mesh gate against a real control plane: a pod placed by the real
scheduler runs its command, the API server reads its log from the node, the kubelet's phases
and exit codes follow pkg/kubelet, and the mesh resets a plaintext call to a STRICT service
from a pod without istio-proxy (OSSM 2.x ``security.dataPlane.mtls``), nothing else."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stagecheck.engine import logs, probe
from stagecheck.engine.evidence import MAX_LOG_LINES, pod_logs
from stagecheck.engine.outcome import StepFailure
from stagecheck.errors import SpecificationError
from stagecheck.kube.client import JsonObject, Kube
from stagecheck.kube.discovery import Discovery
from stagecheck.sandbox.backends import PROCESSES as BACKENDS
from stagecheck.sandbox.controlplane import ControlPlane
from stagecheck.sandbox.standins.base import ENDPOINTS_FILE, Context
from stagecheck.sandbox.standins.mesh_gate import MeshGateStandin, Workload, gate_urls
from stagecheck.sandbox.standins.node import NODE_NAME
from stagecheck.sandbox.standins.process import StandIns
from stagecheck.sandbox.world import apply_documents, load_documents
from tests.support import ROOT, LocalHandler, eventually, local_http

CRDS = ROOT / "stagecheck" / "sandbox" / "worlds" / "stage2" / "01-crds.yaml"
NAMESPACE = "node-test"
MODEL = f"http://mistral-24b-quantized-predictor.{NAMESPACE}.svc.cluster.local/v1/models"
MILVUS = f"http://milvus.{NAMESPACE}.svc.cluster.local:19530/healthz"
PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"


class Backend(LocalHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.reply(json.dumps({"path": self.path}).encode())


def _world() -> list[JsonObject]:
    def pod(name: str, app: str, sidecar: bool) -> JsonObject:
        containers = [{"name": "server", "image": "example/server:1"}]
        if sidecar:
            containers.append({"name": "istio-proxy", "image": "example/proxyv2:2.6"})
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": app}},
            "spec": {"containers": containers},
        }

    def service(name: str, app: str) -> JsonObject:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"selector": {"app": app}, "ports": [{"port": 80}]},
        }

    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}},
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": NAMESPACE, "labels": {"maistra.io/member-of": "istio-system"}},
        },
        {
            "apiVersion": "maistra.io/v2",
            "kind": "ServiceMeshControlPlane",
            "metadata": {"name": "mesh", "namespace": "istio-system"},
            "spec": {"version": "v2.6", "security": {"dataPlane": {"mtls": True}}},
        },
        pod("model-0", "model", sidecar=True),
        service("mistral-24b-quantized-predictor", "model"),
        pod("milvus-0", "milvus", sidecar=False),
        service("milvus", "milvus"),
    ]


@pytest.fixture(scope="module")
def node(control_plane: ControlPlane, kube: Kube) -> Iterator[StandIns]:
    apply_documents(kube, load_documents(CRDS))
    apply_documents(kube, _world())
    endpoints = control_plane.state / ENDPOINTS_FILE
    endpoints.parent.mkdir(parents=True, exist_ok=True)
    with local_http(Backend) as port:
        url = f"http://127.0.0.1:{port}"
        endpoints.write_text(json.dumps({"services": {"llm": url, "milvus": url}}))
        process = StandIns(control_plane.state, ROOT)
        process.start()
        try:
            assert eventually(lambda: probe.runs_containers(kube) is None), process.tail()
            yield process
        finally:
            process.stop()
            endpoints.unlink(missing_ok=True)


def a_pod(
    kube: Kube,
    name: str,
    command: list[str],
    sidecar: bool = False,
    volumes: tuple[JsonObject, ...] = (),
    mounts: tuple[JsonObject, ...] = (),
    image: str = "example/curl:1",
) -> JsonObject:
    """A pod as the engine's probe asks for a node: its label, and no node kwok manages."""
    main: JsonObject = {"name": "main", "image": image, "volumeMounts": list(mounts)}
    if image.startswith("example/"):
        main["command"] = command
    else:
        main["args"] = command  # the image's entrypoint runs them
    containers: list[JsonObject] = [main]
    if sidecar:
        containers.append({"name": "istio-proxy", "image": "example/proxyv2:2.6"})
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"stagecheck.io/probe": "t"}},
        "spec": {
            "restartPolicy": "Never",
            "containers": containers,
            "volumes": list(volumes),
            "affinity": probe.away_from(probe.simulated_nodes(kube)),
        },
    }
    return kube.create(PODS, body)


def ended(kube: Kube, name: str) -> JsonObject:
    """The pod once its main container has terminated."""

    def read() -> JsonObject | None:
        pod = kube.get(f"{PODS}/{name}")
        states = {s["name"]: s["state"] for s in pod["status"].get("containerStatuses") or []}
        return pod if "terminated" in states.get("main", {}) else None

    pod = eventually(read)
    assert pod, kube.get(f"{PODS}/{name}")
    return pod


def main_state(pod: JsonObject) -> JsonObject:
    (found,) = [s for s in pod["status"]["containerStatuses"] if s["name"] == "main"]
    return dict(found["state"])


CURL = ["sh", "-c", "curl -sS -o /dev/null -w 'http=%{http_code}\\n' \"$0\"; echo exit=$?"]


def test_the_node_registers_ready_with_a_lease_and_runs_containers(
    node: StandIns, kube: Kube
) -> None:
    found = kube.get(f"/api/v1/nodes/{NODE_NAME}")
    assert "kwok.x-k8s.io/node" not in (found["metadata"].get("annotations") or {})
    ready = next(c for c in found["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "KubeletReady")
    lease = kube.get(f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{NODE_NAME}")
    assert lease["spec"]["holderIdentity"] == NODE_NAME
    assert probe.runs_containers(kube) is None


def test_a_pod_runs_its_command_and_the_api_server_serves_its_log(
    node: StandIns, kube: Kube
) -> None:
    a_pod(kube, "says-hello", ["sh", "-c", "echo hello; echo trouble >&2; exit 3"])
    pod = ended(kube, "says-hello")
    assert pod["spec"]["nodeName"] == NODE_NAME  # placed there by the real scheduler
    state = main_state(pod)["terminated"]
    assert (state["exitCode"], state["reason"]) == (3, "Error")
    assert pod["status"]["phase"] == "Failed"
    log = kube.get_text(f"{PODS}/says-hello/log", {"container": "main"})
    assert log.splitlines() == ["hello", "trouble"]


def test_a_pod_whose_command_exits_0_succeeds(node: StandIns, kube: Kube) -> None:
    a_pod(kube, "quiet", ["sh", "-c", "true"])
    pod = eventually(lambda: kube.get(f"{PODS}/quiet")["status"].get("phase") == "Succeeded")
    assert pod, kube.get(f"{PODS}/quiet")["status"]
    state = main_state(kube.get(f"{PODS}/quiet"))["terminated"]
    assert (state["exitCode"], state["reason"]) == (0, "Completed")


def test_a_command_cannot_write_outside_its_pods_folder(node: StandIns, kube: Kube) -> None:
    # A folder this test may write and that is not under /tmp (a pod's /tmp is its own, so a
    # checkout below /tmp, as CI's clone, is not even visible there): the user's home.
    outside = Path.home() / f".stagecheck-written-by-a-pod-{uuid.uuid4().hex[:8]}"
    a_pod(kube, "writer", ["sh", "-c", f"echo x > {outside}; echo inside > here; cat here"])
    pod = ended(kube, "writer")
    assert not outside.exists()
    assert main_state(pod)["terminated"]["exitCode"] == 0  # the last command, inside, worked
    log = kube.get_text(f"{PODS}/writer/log")
    outside.unlink(missing_ok=True)
    assert "Read-only file system" in log and "inside" in log


def test_a_pod_with_a_sidecar_passes_the_gate_to_a_strict_mesh_service(
    node: StandIns, kube: Kube
) -> None:
    a_pod(kube, "with-sidecar", [*CURL, MODEL], sidecar=True)
    pod = ended(kube, "with-sidecar")
    log = kube.get_text(f"{PODS}/with-sidecar/log", {"container": "main"})
    assert log.splitlines() == ["http=200", "exit=0"], log
    assert pod["status"]["phase"] == "Running"  # the sidecar keeps a finished pod running


def test_a_pod_without_a_sidecar_is_reset_by_a_strict_mesh_service(
    node: StandIns, kube: Kube
) -> None:
    a_pod(kube, "no-sidecar", [*CURL, MODEL])
    ended(kube, "no-sidecar")
    log = kube.get_text(f"{PODS}/no-sidecar/log")
    verdict = probe.read_verdict(log, kube.get(f"{PODS}/no-sidecar"))
    assert verdict.curl_exit in (52, 56), log
    assert not verdict.sidecar and not verdict.reached


def test_a_service_outside_the_mesh_answers_without_a_sidecar(node: StandIns, kube: Kube) -> None:
    a_pod(kube, "to-milvus", [*CURL, MILVUS])
    ended(kube, "to-milvus")
    log = kube.get_text(f"{PODS}/to-milvus/log")
    assert log.splitlines() == ["http=200", "exit=0"], log


def test_the_worlds_pods_never_land_on_the_node(node: StandIns, kube: Kube) -> None:
    """Without the probe's label a pod that may go only there stays unschedulable."""
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "world-pod", "namespace": NAMESPACE},
        "spec": {
            "containers": [{"name": "main", "image": "example/app:1"}],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchFields": [
                                {"key": "metadata.name", "operator": "In", "values": [NODE_NAME]}
                            ]}
                        ]
                    }
                }
            },
        },
    }  # fmt: skip
    kube.create(PODS, body)

    def unschedulable() -> bool:
        conditions = kube.get(f"{PODS}/world-pod")["status"].get("conditions") or []
        return any(c["type"] == "PodScheduled" and c["status"] == "False" for c in conditions)

    assert eventually(unschedulable)
    assert not kube.get(f"{PODS}/world-pod")["spec"].get("nodeName")


def test_a_deleted_pod_is_stopped_and_gone(node: StandIns, kube: Kube) -> None:
    a_pod(kube, "sleeper", ["sh", "-c", "sleep 600"])
    assert eventually(lambda: kube.get(f"{PODS}/sleeper")["status"].get("phase") == "Running")
    kube.delete(f"{PODS}/sleeper")
    assert eventually(lambda: kube.get_or_none(f"{PODS}/sleeper") is None)


def test_the_llama_stack_gate_resets_calls_while_its_pods_have_no_sidecar(
    node: StandIns, kube: Kube, control_plane: ControlPlane
) -> None:
    """The gate the data plane's Llama Stack calls through (its pods, app=llama-stack in
    private-ai-demo, have no istio-proxy here: none, or the session world's plain ones)."""
    gate = gate_urls(control_plane.state)["private-ai-demo/app=llama-stack"]
    with httpx.Client(proxy=gate, timeout=10) as client:
        with pytest.raises(httpx.TransportError):
            client.get(MODEL)
        assert client.get(MILVUS).status_code == 200


def test_a_workloads_gate_follows_its_pods_sidecar(
    node: StandIns, kube: Kube, tmp_path: Path
) -> None:
    """A gate bound to pods by label decides by their spec at each pass: a pod with
    istio-proxy passes, and once every such pod is gone the same caller is reset."""
    (tmp_path / ENDPOINTS_FILE).parent.mkdir(parents=True)
    with local_http(Backend) as port:
        (tmp_path / ENDPOINTS_FILE).write_text(
            json.dumps({"services": {"llm": f"http://127.0.0.1:{port}"}})
        )
        caller = Workload(NAMESPACE, "app=caller")
        gate = MeshGateStandin((caller,))
        ctx = Context(kube, Discovery(kube), tmp_path, BACKENDS)
        gate.start(ctx)
        try:
            url = gate_urls(tmp_path)[caller.key]
            caller_pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "caller-0", "namespace": NAMESPACE,
                             "labels": {"app": "caller"}},
                "spec": {"containers": [{"name": "app", "image": "example/app:1"},
                                        {"name": "istio-proxy", "image": "example/proxyv2:2.6"}]},
            }  # fmt: skip
            kube.create(PODS, caller_pod)
            gate.reconcile(ctx)
            with httpx.Client(proxy=url, timeout=10) as client:
                assert client.get(MODEL).json() == {"path": "/v1/models"}
                kube.delete(f"{PODS}/caller-0", grace_period_s=0)
                assert eventually(lambda: kube.get_or_none(f"{PODS}/caller-0") is None)
                gate.reconcile(ctx)
                with pytest.raises(httpx.TransportError):
                    client.get(MODEL)
        finally:
            gate.stop()


def test_a_restarted_gate_keeps_the_port_the_data_plane_was_given(
    node: StandIns, control_plane: ControlPlane
) -> None:
    before = gate_urls(control_plane.state)
    node.stop()
    node.start()
    assert gate_urls(control_plane.state) == before
    with httpx.Client(proxy=before["private-ai-demo/app=llama-stack"], timeout=10) as client:
        assert client.get(MILVUS).status_code == 200


def test_a_settled_node_writes_nothing(node: StandIns, kube: Kube) -> None:
    node.await_settled()
    node.await_settled()


def test_a_red_steps_pod_evidence_carries_the_last_lines_of_each_container_log(
    node: StandIns, kube: Kube
) -> None:
    lines = ["sh", "-c", "for i in $(seq 1 50); do echo line-$i; done; echo failing >&2; exit 3"]
    a_pod(kube, "chatty", lines)
    pod = ended(kube, "chatty")
    logs = pod_logs(kube, [pod])
    assert logs is not None and logs.name == "container logs"
    main = logs.text.split("\n\n")[0]
    assert main.startswith("== pod chatty, container main\n")
    shown = main.splitlines()[1:]
    assert len(shown) == MAX_LOG_LINES and shown[-1] == "failing" and shown[0] == "line-22"
    assert "previous container" not in logs.text  # it never restarted


def test_a_log_that_cannot_be_read_says_why_and_fails_nothing(node: StandIns, kube: Kube) -> None:
    pod = {"metadata": {"name": "nowhere-0", "namespace": NAMESPACE},
           "spec": {"containers": [{"name": "server"}]},
           "status": {"containerStatuses": [{"name": "server", "restartCount": 2}]}}  # fmt: skip
    logs = pod_logs(kube, [pod])
    assert logs is not None
    sections = logs.text.split("\n\n")
    assert sections[0].startswith(
        "== pod nowhere-0, previous container server\n(log not available:"
    )
    assert "not found" in sections[1]


def test_the_logs_of_pods_contain_a_line_or_no_line_matching_an_error(
    node: StandIns, kube: Kube
) -> None:
    """Through the API server's log proxy to the stand-in kubelet, as oc logs reads them."""
    for name in ("logger-a", "logger-b"):
        a_pod(kube, name, ["sh", "-c", "echo starting; echo 'server ready on :8321'; "
                           "echo 'ERROR: connection to vllm refused'"])  # fmt: skip
        kube.patch(f"{PODS}/{name}", {"metadata": {"labels": {"app": "logger"}}})
    for name in ("logger-a", "logger-b"):
        ended(kube, name)
    source = logs.Source(NAMESPACE, selector="app=logger")
    logs.expect_line(kube, source, "server ready", None)
    logs.expect_no_line(kube, source, "panic|Traceback")
    with pytest.raises(StepFailure) as caught:
        logs.expect_line(kube, source, "model loaded", 0.5)
    message = str(caught.value)
    assert "logs of pods with labels app=logger in" in message
    assert "expected a line containing 'model loaded'" in message
    assert "no line containing it in 2 container log(s) of 2 pod(s)" in message
    assert caught.value.evidence and "server ready on :8321" in caught.value.evidence[0].text
    with pytest.raises(StepFailure) as caught:
        logs.expect_no_line(kube, source, "ERROR|Traceback")
    assert "2 line(s): logger-a/main: ERROR: connection to vllm refused" in str(caught.value)
    with pytest.raises(SpecificationError, match=r"'ERROR\[' is not a regular expression"):
        logs.expect_no_line(kube, source, "ERROR[")


ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
# curl through the pod's proxy by CONNECT (how gRPC and https use one)
TUNNEL = ["sh", "-c", "curl -sS -p -o /dev/null -w 'http=%{http_code}\\n' \"$0\"; echo exit=$?"]


def test_a_pods_volumes_are_what_the_kubelet_mounts(node: StandIns, kube: Kube) -> None:
    """The service account's projected volume (a real token the API server accepts, its CA,
    the namespace) at the standard path with KUBERNETES_SERVICE_*; a ConfigMap read-only; an
    emptyDir writable."""
    apply_documents(kube, [{"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "settings", "namespace": NAMESPACE},
                            "data": {"greeting": "hi"}}])  # fmt: skip
    script = (
        "cat /etc/settings/greeting; echo; echo x > /etc/settings/new || echo refused; "
        "echo w > /scratch/f && cat /scratch/f; cat " + ACCOUNT + "/namespace; echo; "
        "curl -sS -o /dev/null -w 'api=%{http_code}\\n' --cacert " + ACCOUNT + "/ca.crt "
        '-H "Authorization: Bearer $(cat ' + ACCOUNT + '/token)" '
        "https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api"
    )
    a_pod(
        kube, "mounts", ["sh", "-c", script],
        volumes=({"name": "settings", "configMap": {"name": "settings"}},
                 {"name": "scratch", "emptyDir": {}}),
        mounts=({"name": "settings", "mountPath": "/etc/settings"},
                {"name": "scratch", "mountPath": "/scratch"}),
    )  # fmt: skip
    ended(kube, "mounts")
    log = kube.get_text(f"{PODS}/mounts/log", {"container": "main"}).splitlines()
    assert log[0] == "hi" and "Read-only file system" in log[1] and log[2] == "refused", log
    assert log[3:] == ["w", NAMESPACE, "api=200"], log


def test_a_missing_configmap_keeps_the_container_creating_naming_it(
    node: StandIns, kube: Kube
) -> None:
    volume = {"name": "settings", "configMap": {"name": "absent"}}
    mount = {"name": "settings", "mountPath": "/etc/settings"}
    a_pod(kube, "unmounted", ["true"], volumes=(volume,), mounts=(mount,))

    def waiting() -> JsonObject | None:
        statuses = kube.get(f"{PODS}/unmounted")["status"].get("containerStatuses") or []
        state = next((s["state"] for s in statuses if s["name"] == "main"), {})
        return state.get("waiting") if (state.get("waiting") or {}).get("message") else None

    found = eventually(waiting)
    assert found == {
        "reason": "ContainerCreating",
        "message": 'MountVolume.SetUp failed for volume "settings" : configmap "absent" not found',
    }, found


def test_a_tunnel_through_the_gate_follows_the_mesh_rule(node: StandIns, kube: Kube) -> None:
    a_pod(kube, "tunnel-sidecar", [*TUNNEL, MODEL], sidecar=True)
    a_pod(kube, "tunnel-plain", [*TUNNEL, MODEL])
    ended(kube, "tunnel-sidecar")
    ended(kube, "tunnel-plain")
    passed = kube.get_text(f"{PODS}/tunnel-sidecar/log", {"container": "main"})
    refused = kube.get_text(f"{PODS}/tunnel-plain/log", {"container": "main"})
    assert passed.splitlines() == ["http=200", "exit=0"], passed
    assert "exit=0" not in refused, refused


def test_a_port_made_permissive_by_a_peer_authentication_lets_plaintext_in(
    node: StandIns, kube: Kube
) -> None:
    """Istio's precedence: the workload's policy, its port-level mode for the port the
    Service sends to (80 here), over the mesh's STRICT."""
    policy = {"apiVersion": "security.istio.io/v1beta1", "kind": "PeerAuthentication",
              "metadata": {"name": "model-permissive", "namespace": NAMESPACE},
              "spec": {"selector": {"matchLabels": {"app": "model"}},
                       "portLevelMtls": {"80": {"mode": "PERMISSIVE"}}}}  # fmt: skip
    apply_documents(kube, [policy])
    path = f"/apis/security.istio.io/v1beta1/namespaces/{NAMESPACE}/peerauthentications"
    try:
        time.sleep(1.5)  # the gate's table is rebuilt every pass
        a_pod(kube, "permissive", [*CURL, MODEL])
        ended(kube, "permissive")
        log = kube.get_text(f"{PODS}/permissive/log", {"container": "main"})
        assert log.splitlines() == ["http=200", "exit=0"], log
    finally:
        kube.delete(f"{path}/model-permissive")


def test_a_route_is_served_by_the_router_with_tls_its_pods_trust(
    node: StandIns, kube: Kube
) -> None:
    """An admitted Route's host from a pod: TLS by the router's default certificate, which
    the pod's service account CA bundle verifies; a NetworkPolicy that leaves the router out
    makes the router answer its own 503."""
    route = {
        "apiVersion": "route.openshift.io/v1",
        "kind": "Route",
        "metadata": {"name": "milvus", "namespace": NAMESPACE},
        "spec": {
            "host": "milvus.apps.sandbox.local",
            "to": {"kind": "Service", "name": "milvus"},
            "tls": {"termination": "edge"},
        },
    }
    members_only = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                    "metadata": {"name": "members-only", "namespace": NAMESPACE},
                    "spec": {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {
                        "matchLabels": {"maistra.io/member-of": "istio-system"}}}]}]}}  # fmt: skip
    verified = [
        "sh",
        "-c",
        "curl -sS -o /dev/null -w 'http=%{http_code}\\n' --cacert "
        + ACCOUNT
        + '/ca.crt "$0"; echo exit=$?',
        "https://milvus.apps.sandbox.local/healthz",
    ]
    apply_documents(kube, [route])
    assert eventually(
        lambda: (
            kube.get(f"/apis/route.openshift.io/v1/namespaces/{NAMESPACE}/routes/milvus").get(
                "status"
            )
            or {}
        ).get("ingress")
    )
    time.sleep(1.5)
    a_pod(kube, "routed", verified)
    ended(kube, "routed")
    log = kube.get_text(f"{PODS}/routed/log", {"container": "main"})
    assert log.splitlines() == ["http=200", "exit=0"], log
    policies = f"/apis/networking.k8s.io/v1/namespaces/{NAMESPACE}/networkpolicies"
    apply_documents(kube, [members_only])
    try:
        time.sleep(1.5)
        a_pod(kube, "routed-refused", verified)
        ended(kube, "routed-refused")
        log = kube.get_text(f"{PODS}/routed-refused/log", {"container": "main"})
        assert log.splitlines() == ["http=503", "exit=0"], log
    finally:
        kube.delete(f"{policies}/members-only")


def test_a_pod_stops_its_own_sidecar_through_the_agents_port(node: StandIns, kube: Kube) -> None:
    """POST 127.0.0.1:15020/quitquitquit from the pod ends its istio-proxy (exit 0), so the pod
    can finish; the same call from a process that is no pod of the node is refused."""
    quit = [
        "sh",
        "-c",
        "curl -sS -X POST -o /dev/null -w 'http=%{http_code}\\n' http://127.0.0.1:15020/quitquitquit",
    ]
    a_pod(kube, "quitter", quit, sidecar=True)
    pod = eventually(
        lambda: (p := kube.get(f"{PODS}/quitter"))["status"].get("phase") == "Succeeded" and p
    )
    assert pod, kube.get(f"{PODS}/quitter")["status"]
    proxy = next(s for s in pod["status"]["containerStatuses"] if s["name"] == "istio-proxy")
    assert proxy["state"]["terminated"]["exitCode"] == 0
    assert kube.get_text(f"{PODS}/quitter/log", {"container": "main"}).strip() == "http=200"
    outsider = httpx.post("http://127.0.0.1:15020/quitquitquit", trust_env=False)
    assert outsider.status_code == 403


def test_the_projects_image_runs_from_this_checkout(node: StandIns, kube: Kube) -> None:
    """ghcr.io/.../stagecheck: the Containerfile's ENTRYPOINT (pytest) with the pod's args."""
    a_pod(kube, "own-image", ["--version"], image="ghcr.io/example/stagecheck:0.1.0")
    pod = ended(kube, "own-image")
    assert main_state(pod)["terminated"]["exitCode"] == 0
    assert kube.get_text(f"{PODS}/own-image/log", {"container": "main"}).startswith("pytest ")


def test_a_volume_at_tmp_hides_neither_the_pods_folder_nor_its_workdir(
    node: StandIns, kube: Kube
) -> None:
    """deploy/'s Job mounts an emptyDir at /tmp; the pod's folder (under /tmp when the sandbox's
    state is, as in tests) and a checkout under /tmp (CI's clone) must stay visible below it."""
    scratch = {"name": "tmp", "emptyDir": {}}
    a_pod(
        kube, "tmp-volume", ["sh", "-c", "echo ok > /tmp/x && cat /tmp/x && pwd"],
        volumes=(scratch,), mounts=({"name": "tmp", "mountPath": "/tmp"},),
    )  # fmt: skip
    pod = ended(kube, "tmp-volume")
    log = kube.get_text(f"{PODS}/tmp-volume/log", {"container": "main"}).splitlines()
    assert main_state(pod)["terminated"]["exitCode"] == 0, log
    assert log[0] == "ok" and log[1].endswith(pod["metadata"]["uid"]), log
