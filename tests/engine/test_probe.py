"""The connectivity probe's pod and verdict (pure logic). It runs for real on the sandbox's
stand-in node (tests/sandbox/test_node_standin.py, tests/sandbox/test_stage2.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from stagecheck.engine import probe
from tests.support import LocalHandler, local_http

DEPLOYMENT: dict[str, Any] = {
    "metadata": {"name": "llama-stack", "namespace": "private-ai-demo"},
    "spec": {
        "selector": {"matchLabels": {"app": "llama-stack"}},
        "template": {
            "metadata": {
                "labels": {"app": "llama-stack", "sidecar.istio.io/inject": "true"},
                "annotations": {
                    "sidecar.istio.io/proxyCPU": "100m",
                    "prometheus.io/scrape": "true",
                },
            },
            "spec": {"serviceAccountName": "rag-workload-sa", "containers": [{"name": "app"}]},
        },
    },
}
URL = "http://mistral-24b-quantized-predictor.private-ai-demo.svc.cluster.local/v1/models"


def test_the_probe_carries_the_workloads_identity_and_mesh_settings_only() -> None:
    pod = probe.probe_pod(DEPLOYMENT, URL, "run-1")
    meta, spec = pod["metadata"], pod["spec"]
    assert meta["namespace"] == "private-ai-demo"
    assert spec["serviceAccountName"] == "rag-workload-sa"
    assert meta["labels"]["sidecar.istio.io/inject"] == "true"
    assert meta["labels"]["stagecheck.io/run"] == "run-1"
    assert "app" not in meta["labels"]  # never an endpoint of the workload's Services
    assert meta["annotations"]["sidecar.istio.io/proxyCPU"] == "100m"
    assert "prometheus.io/scrape" not in meta["annotations"]
    assert "holdApplicationUntilProxyStarts" in meta["annotations"]["proxy.istio.io/config"]
    assert spec["restartPolicy"] == "Never"
    command = spec["containers"][0]["command"]
    assert command[:2] == ["sh", "-c"] and command[-1] == URL  # an argument, not in the script
    assert URL not in command[2] and '"$0"' in command[2]


def test_the_probe_keeps_off_the_nodes_that_run_no_container() -> None:
    pod = probe.probe_pod(DEPLOYMENT, URL, "run-1", avoid_nodes=["kwok-node-0", "kwok-node-1"])
    terms = pod["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    (term,) = terms["nodeSelectorTerms"]
    assert term["matchFields"] == [
        {"key": "metadata.name", "operator": "NotIn", "values": ["kwok-node-0"]},
        {"key": "metadata.name", "operator": "NotIn", "values": ["kwok-node-1"]},
    ]
    # a cluster without kwok nodes: the scheduler is asked nothing more
    assert "affinity" not in probe.probe_pod(DEPLOYMENT, URL, "run-1", avoid_nodes=[])["spec"]


def pod_with(*containers: str) -> dict[str, Any]:
    return {"spec": {"containers": [{"name": c} for c in containers]}}


def test_a_reset_without_a_sidecar_is_explained_as_mtls() -> None:
    log = "curl: (56) Recv failure: Connection reset by peer\nhttp=000\nexit=56\n"
    verdict = probe.read_verdict(log, pod_with("probe"))
    assert verdict == probe.Verdict(
        None, 56, "curl: (56) Recv failure: Connection reset by peer", False
    )
    seen = probe.judge("llama-stack", URL, verdict, workload_has_sidecar=False)
    assert not seen.ok
    assert (
        "the connection was reset" in seen.actual
        and "without an istio-proxy sidecar" in seen.actual
    )
    assert seen.cause and "requires mTLS" in seen.cause and "get no sidecar either" in seen.cause


def test_an_answer_through_the_sidecar_passes() -> None:
    verdict = probe.read_verdict("http=200\nexit=0\n", pod_with("probe", "istio-proxy"))
    seen = probe.judge("llama-stack", URL, verdict, workload_has_sidecar=True)
    assert seen.ok and seen.actual == f"HTTP 200 from {URL}, probe with an istio-proxy sidecar"


def test_a_mesh_denial_names_the_authorization_policy() -> None:
    assert probe.read_verdict("http=401\nexit=0\n", pod_with("probe")).reached  # path open
    for status in ("403", "503"):
        log = f"http={status}\nexit=0\n"
        verdict = probe.read_verdict(log, pod_with("probe", "istio-proxy"))
        seen = probe.judge("llama-stack", URL, verdict, workload_has_sidecar=True)
        assert not seen.ok and seen.actual.startswith(f"HTTP {status}")
        assert seen.cause and "AuthorizationPolicy denies" in seen.cause


def verdict_of(status: int, server: str = "", upstream: str = "", page: int = 0) -> probe.Verdict:
    log = f"http={status}\nserver={server}\nupstream={upstream}\nexit=0\nrouter_page={page}\n"
    return probe.read_verdict(log, pod_with("probe"))


@pytest.mark.parametrize(
    ("status", "server", "upstream", "page", "reached", "by"),
    [
        (404, "istio-envoy", "", 0, False, probe.MESH_PROXY),  # Envoy's own: no route
        (404, "envoy", "", 0, False, probe.MESH_PROXY),
        (200, "istio-envoy", "", 0, False, probe.MESH_PROXY),  # a direct response is no answer
        (404, "istio-envoy", "3", 0, True, probe.DESTINATION),  # forwarded from the destination
        (401, "nginx", "", 0, True, probe.DESTINATION),
        (405, "", "", 0, True, ""),  # headers absent: the status alone decides, as before
        (404, "%header{server}", "%header{x-envoy-upstream-service-time}", 0, True, ""),  # old curl
        (503, "", "", 1, False, probe.ROUTER),  # the router's "Application is not available"
        (503, "istio-envoy", "12", 1, False, probe.DESTINATION),  # the app's own page, forwarded
    ],
)
def test_who_answered_is_read_from_the_server_and_upstream_headers(
    status: int, server: str, upstream: str, page: int, reached: bool, by: str
) -> None:
    verdict = verdict_of(status, server, upstream, page)
    assert (verdict.reached, verdict.answered_by) == (reached, by)


def test_a_mesh_proxys_own_reply_is_named_not_reached() -> None:
    seen = probe.judge("llama-stack", URL, verdict_of(404, "istio-envoy"), False)
    assert not seen.ok
    assert seen.actual == (
        "the mesh proxy answered 404 itself (no route to the destination); "
        "probe without an istio-proxy sidecar"
    )
    assert seen.cause and "server: istio-envoy and no x-envoy-upstream-service-time" in seen.cause


def test_the_routers_own_503_is_named() -> None:
    seen = probe.judge("llama-stack", URL, verdict_of(503, page=1), False)
    assert not seen.ok
    assert seen.actual.startswith('the OpenShift router answered 503 itself ("Application is not')


def test_a_refusal_from_the_destination_itself_does_not_blame_the_mesh() -> None:
    verdict = probe.read_verdict(
        "http=403\nserver=istio-envoy\nupstream=4\nexit=0\n", pod_with("probe", "istio-proxy")
    )
    seen = probe.judge("llama-stack", URL, verdict, workload_has_sidecar=True)
    assert not seen.ok and seen.actual.startswith("HTTP 403 from the destination itself")
    assert seen.cause is None


class Answers(LocalHandler):
    """Envoy's local reply, an answer Envoy forwarded, and the OpenShift router's own 503."""

    answered_as = ""  # the Server header

    def version_string(self) -> str:
        return self.answered_as

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        if self.path == "/envoy-local":
            self.answered_as = "istio-envoy"
            self.reply(b"", 404)
        elif self.path == "/forwarded":
            self.answered_as = "istio-envoy"
            self.send_response(404)
            self.send_header(probe.UPSTREAM_TIME, "2")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/router":
            self.reply(b"<html><h1>Application is not available</h1></html>" * 400, 503)
        else:
            self.answered_as = "SimpleHTTP/0.6"
            self.reply(b"no such file", 404)


def test_the_probe_script_run_here_with_real_curl_reads_back_its_verdict() -> None:
    """The pod's command, run on this machine with curl, against a real server and a closed
    port: what the verdict reads is what curl printed, headers and the router's page too."""
    import shutil
    import subprocess

    from stagecheck.sandbox.controlplane import free_ports

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed here")
    (closed,) = free_ports(1)
    seen = {}
    with local_http(Answers) as port:
        for name, url in [
            ("open", f"http://127.0.0.1:{port}/it's"),
            ("envoy-local", f"http://127.0.0.1:{port}/envoy-local"),
            ("forwarded", f"http://127.0.0.1:{port}/forwarded"),
            ("router", f"http://127.0.0.1:{port}/router"),
            ("closed", f"http://127.0.0.1:{closed}/"),
        ]:
            command = probe.probe_pod(DEPLOYMENT, url, "run-1")["spec"]["containers"][0]["command"]
            done = subprocess.run(command, capture_output=True, text=True, timeout=30)
            seen[name] = probe.read_verdict(done.stderr + done.stdout, pod_with("probe"))
            assert "Application is not available" not in done.stdout + done.stderr  # no body
    assert seen["open"].curl_exit == 0 and seen["open"].http_status == 404  # no such file
    assert seen["open"].server == "SimpleHTTP/0.6" and seen["open"].reached
    assert seen["envoy-local"].answered_by == probe.MESH_PROXY and not seen["envoy-local"].reached
    assert seen["forwarded"].upstream and seen["forwarded"].reached
    assert seen["router"].answered_by == probe.ROUTER and not seen["router"].reached
    assert seen["closed"].curl_exit == 7 and seen["closed"].http_status is None
    assert "Failed to connect" in seen["closed"].curl_error
    assert not probe.judge("llama-stack", "u", seen["closed"], False).ok


def test_the_workloads_sidecar_is_read_from_its_pods_not_its_template(kube: Any) -> None:
    """An injecting webhook adds istio-proxy at admission: the template never has it."""
    namespace = "probe-sidecar"
    kube.apply(f"/api/v1/namespaces/{namespace}", {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": namespace}})  # fmt: skip
    assert not probe._pods_have_sidecar(kube, namespace, DEPLOYMENT)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "llama-stack-1", "labels": {"app": "llama-stack"}},
        "spec": {
            "nodeName": "nowhere",
            "containers": [{"name": "app", "image": "a"}, {"name": "istio-proxy", "image": "p"}],
        },
    }
    deadline = time.monotonic() + 15
    while kube.get_or_none(f"/api/v1/namespaces/{namespace}/serviceaccounts/default") is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    kube.create(f"/api/v1/namespaces/{namespace}/pods", pod)
    assert probe._pods_have_sidecar(kube, namespace, DEPLOYMENT)
