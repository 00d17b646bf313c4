"""The connectivity probe's pod and verdict (pure logic). It runs for real on the sandbox's
stand-in node (tests/sandbox/test_node_standin.py, tests/sandbox/test_stage2.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from stagecheck.engine import probe

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


def test_the_probe_script_run_here_with_real_curl_reads_back_its_verdict() -> None:
    """The pod's command, run on this machine with curl, against a real server and a closed
    port: what the verdict reads is what curl printed."""
    import http.server
    import shutil
    import subprocess
    import threading

    from stagecheck.sandbox.controlplane import free_ports

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed here")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    (closed,) = free_ports(1)
    try:
        seen = {}
        for name, url in [
            ("open", f"http://127.0.0.1:{server.server_address[1]}/it's"),
            ("closed", f"http://127.0.0.1:{closed}/"),
        ]:
            command = probe.probe_pod(DEPLOYMENT, url, "run-1")["spec"]["containers"][0]["command"]
            done = subprocess.run(command, capture_output=True, text=True, timeout=30)
            seen[name] = probe.read_verdict(done.stderr + done.stdout, pod_with("probe"))
    finally:
        server.shutdown()
    assert seen["open"].curl_exit == 0 and seen["open"].http_status == 404  # no such file
    assert seen["open"].reached
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
