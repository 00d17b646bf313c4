"""Connectivity diagnosis: can workload A reach service B, seen from where A runs?

On a cluster whose nodes run containers, a short-lived probe pod is created in A's namespace
with A's service account and A's mesh settings (its pod template's ``sidecar.istio.io/*`` and
``proxy.istio.io/*`` annotations and ``sidecar.istio.io/inject`` label), runs ``curl`` against
B once, and is deleted. The verdict reports the HTTP status, curl's error (connection reset,
TLS handshake, timeout) and whether the probe got an ``istio-proxy`` sidecar, with the likely
cause when the mesh is what stopped it. Only an answer from B itself counts as reaching it: an
Envoy's own local reply (``server: envoy`` or ``istio-envoy`` without the
``x-envoy-upstream-service-time`` header Envoy adds only to answers forwarded from an upstream)
and an OpenShift router's own 503 page are named as such.

A's selector labels are not copied: the probe must never become an endpoint of A's Services.
Creating the pod is a write: a run without writes plans it (``Planned``: skipped, nothing
written). A node that kwok manages runs no
container: on a cluster that has such nodes the probe asks for a node kwok does not manage (a
required node affinity on the node names), and where no Ready node outside kwok exists a probe
would prove nothing: the check raises ``CannotRunHere`` and the scenario is skipped with that
reason, never passed.
"""

from __future__ import annotations

import secrets
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from stagecheck.engine.checks import condition, container_names
from stagecheck.engine.evidence import object_yaml
from stagecheck.engine.outcome import Evidence, Observation, StepFailure
from stagecheck.engine.runs import MANAGED_BY, RUN_LABEL, Journal
from stagecheck.errors import CannotRunHere, KubeApiError, Planned, ProbeError, StagecheckError
from stagecheck.kube.client import JsonObject, Kube

DEFAULT_IMAGE = "quay.io/curl/curl:8.11.1"
SIDECAR = "istio-proxy"
PROBE = "probe"
CURL_TIMEOUT_S = 10
POD_TIMEOUT_S = 120.0
# Waiting reasons the kubelet gives a container it cannot make: it retries, but nothing this
# probe does changes the outcome (pkg/kubelet/container/sync_result.go, kuberuntime).
CANNOT_START = ("CreateContainerError", "CreateContainerConfigError", "RunContainerError")
MESH_ANNOTATIONS = ("sidecar.istio.io/", "proxy.istio.io/", "traffic.sidecar.istio.io/")
KWOK_NODE = "kwok.x-k8s.io/node"
# curl exit codes worth a sentence
CURL_ERRORS = {
    6: "the name does not resolve",
    7: "the connection was refused",
    28: f"no answer within {CURL_TIMEOUT_S}s",
    35: "the TLS handshake failed",
    52: "the server closed the connection without a reply",
    56: "the connection was reset",
    60: "the server's certificate is not trusted",
}
# Who answered. Envoy (a sidecar or a gateway) adds x-envoy-upstream-service-time only to an
# answer that came from an upstream; its own local replies carry none (envoy router filter,
# suppress_envoy_headers unset, as in Istio). The OpenShift router's own 503 is its HAProxy
# error page (openshift/router images/router/haproxy/conf/error-page-503.http).
ENVOY_SERVERS = frozenset({"envoy", "istio-envoy"})
UPSTREAM_TIME = "x-envoy-upstream-service-time"
ROUTER_PAGE = "Application is not available"
DESTINATION, MESH_PROXY, ROUTER = "destination", "mesh proxy", "router"
ENVOY_LOCAL_REPLIES = {
    403: "an AuthorizationPolicy denies the caller",
    404: "no route to the destination",
    503: "no healthy upstream, or the connection to the destination failed",
    504: "the destination did not answer in time",
}


@dataclass(frozen=True)
class Verdict:
    http_status: int | None
    curl_exit: int
    curl_error: str
    sidecar: bool
    server: str | None = None  # the answer's Server header
    upstream: bool = False  # it carries x-envoy-upstream-service-time
    router_page: bool = False  # its body is the OpenShift router's "Application is not available"

    @property
    def answered_by(self) -> str:
        """DESTINATION, MESH_PROXY (Envoy's own local reply), ROUTER (the router's own 503), or
        "" where nothing says (no answer, or an answer without these headers)."""
        if self.http_status is None:
            return ""
        if self.http_status == 503 and self.router_page and not self.upstream:
            return ROUTER
        if self.upstream:
            return DESTINATION
        if self.server is not None:
            return MESH_PROXY if self.server.lower() in ENVOY_SERVERS else DESTINATION
        return ""

    @property
    def reached(self) -> bool:
        """An answer from the service itself: any status but a refusal (403) or no upstream
        (5xx); 401, 404 or 405 still prove the path is open. A mesh proxy's or a router's own
        reply is not the service's."""
        status = self.http_status
        return (
            self.curl_exit == 0
            and status is not None
            and status != 403
            and status < 500
            and self.answered_by not in (MESH_PROXY, ROUTER)
        )


def runs_containers(kube: Kube) -> str | None:
    """None when a Ready node that is not kwok's can run the probe; else why a probe would
    prove nothing here."""
    nodes = kube.get("/api/v1/nodes")["items"]
    real = [
        n
        for n in nodes
        if not _simulated(n) and (condition(n, "Ready") or {}).get("status") == "True"
    ]
    if not real:
        return (
            f"no node of {kube.target.describe()} runs containers ({len(nodes)} nodes, none "
            "Ready outside kwok): a probe pod there would run nothing and prove nothing; run "
            "this scenario against a kind or live cluster"
        )
    return None


def simulated_nodes(kube: Kube) -> list[str]:
    """The nodes kwok manages (they run no container)."""
    nodes = kube.get("/api/v1/nodes")["items"]
    return sorted(n["metadata"]["name"] for n in nodes if _simulated(n))


def _simulated(node: JsonObject) -> bool:
    return bool((node["metadata"].get("annotations") or {}).get(KWOK_NODE))


def away_from(nodes: list[str]) -> JsonObject:
    """A required node affinity that keeps a pod off ``nodes`` (one field requirement per
    node: the API allows a single value for a ``metadata.name`` field selector)."""
    fields = [{"key": "metadata.name", "operator": "NotIn", "values": [n]} for n in nodes]
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchFields": fields}]
            }
        }
    }


def probe_pod(
    workload: JsonObject,
    url: str,
    run_id: str,
    image: str = DEFAULT_IMAGE,
    avoid_nodes: list[str] | None = None,
) -> JsonObject:
    """The probe: A's namespace, service account and mesh settings; curl once against ``url``;
    never on one of ``avoid_nodes`` (the nodes that run no container)."""
    template = workload["spec"]["template"]
    meta, spec = template.get("metadata", {}), template.get("spec", {})
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith(MESH_ANNOTATIONS)
    }
    labels = {RUN_LABEL: run_id, MANAGED_BY: "stagecheck", "stagecheck.io/probe": "true"}
    inject = (meta.get("labels") or {}).get("sidecar.istio.io/inject")
    if inject is not None:
        labels["sidecar.istio.io/inject"] = inject
    name = f"stagecheck-probe-{workload['metadata']['name']}"[:50] + "-" + secrets.token_hex(3)
    # The URL is passed as an argument ($0), never spliced into the script. curl writes its
    # verdict to stderr (%{stderr}, curl 7.63) with the Server and upstream-time headers
    # (%header{}, curl 7.84; an older curl prints the name itself, read as absent); the body
    # goes to the pipe, where only the router's own 503 page is looked for, never logged.
    script = (
        f"{{ curl -sS --max-time {CURL_TIMEOUT_S} -w '%{{stderr}}http=%{{http_code}}\\n"
        f"server=%header{{server}}\\nupstream=%header{{{UPSTREAM_TIME}}}\\n' "
        '"$0"; echo "exit=$?" >&2; } '
        f"| grep -c '{ROUTER_PAGE}' | sed 's/^/router_page=/'"
    )
    spec_out: JsonObject = {
        "serviceAccountName": spec.get("serviceAccountName", "default"),
        "restartPolicy": "Never",
        "containers": [{"name": PROBE, "image": image, "command": ["sh", "-c", script, url]}],
    }
    if avoid_nodes:
        spec_out["affinity"] = away_from(avoid_nodes)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": workload["metadata"]["namespace"],
            "labels": labels,
            # The probe runs once; the sidecar must be up first or the probe fails for nothing.
            "annotations": {
                **annotations,
                "proxy.istio.io/config": '{"holdApplicationUntilProxyStarts": true}',
            },
        },
        "spec": spec_out,
    }


def read_verdict(log: str, pod: JsonObject) -> Verdict:
    """What the probe's log and its pod say."""
    values = dict(line.split("=", 1) for line in log.splitlines() if "=" in line)
    code = values.get("http", "000")
    status = int(code) if code.isdigit() and code != "000" else None
    exit_code = int(values["exit"]) if values.get("exit", "").isdigit() else -1
    errors = [line for line in log.splitlines() if line.startswith("curl:")]
    return Verdict(
        status,
        exit_code,
        errors[0] if errors else CURL_ERRORS.get(exit_code, ""),
        SIDECAR in container_names(pod),
        server=_header(values.get("server")),
        upstream=_header(values.get("upstream")) is not None,
        router_page=values.get("router_page", "0").strip() not in ("", "0"),
    )


def _header(written: str | None) -> str | None:
    """A header's value as curl wrote it: None when absent, or when an older curl printed the
    ``%header{...}`` it does not know."""
    value = (written or "").strip()
    return value if value and not value.startswith("%") else None


def judge(workload: str, url: str, verdict: Verdict, workload_has_sidecar: bool) -> Observation:
    sidecar = "with an istio-proxy sidecar" if verdict.sidecar else "without an istio-proxy sidecar"
    if verdict.reached:
        return Observation.passed(f"HTTP {verdict.http_status} from {url}, probe {sidecar}")
    status, by = verdict.http_status, verdict.answered_by
    if by == MESH_PROXY:
        why = ENVOY_LOCAL_REPLIES.get(status or 0)
        return Observation(
            ok=False,
            actual=f"the mesh proxy answered {status} itself"
            + (f" ({why})" if why else "")
            + f"; probe {sidecar}",
            cause=f"the answer carries server: {verdict.server} and no {UPSTREAM_TIME}, which "
            f"Envoy adds to every answer it forwards from a destination: {url} never answered",
        )
    if by == ROUTER:
        return Observation(
            ok=False,
            actual=f'the OpenShift router answered 503 itself ("{ROUTER_PAGE}"); probe {sidecar}',
            cause="the router has no admitted Route for this host, or none of the Route's "
            f"endpoints is ready: {url} never answered",
        )
    what = CURL_ERRORS.get(verdict.curl_exit, f"curl exit {verdict.curl_exit}")
    actual = (
        f"HTTP {status}" + (" from the destination itself" if by == DESTINATION else "")
        if status
        else f"{what} ({verdict.curl_error})"
    ) + f"; probe {sidecar}"
    cause = None
    if not verdict.sidecar and verdict.curl_exit in (52, 56, 35):
        cause = (
            "a plaintext call from outside the mesh was reset: the service requires mTLS "
            f"(PeerAuthentication STRICT) and {workload}'s pods"
            + (" have a sidecar, so check the probe's injection" if workload_has_sidecar
               else " get no sidecar either")
        )  # fmt: skip
    elif verdict.sidecar and status in (403, 503) and by != DESTINATION:
        cause = (
            "the mesh answered: an AuthorizationPolicy denies the caller's service account "
            "(403) or the destination has no healthy endpoint in the mesh (503)"
        )
    return Observation(ok=False, actual=actual, cause=cause)


def can_reach(
    kube: Kube, namespace: str, workload: str, url: str, journal: Journal, image: str
) -> str:
    """Run the probe on a cluster that runs containers; returns what was seen."""
    if not kube.target.allow_writes or journal.plan:  # say what the probe would create
        raise Planned([f"create a probe pod in {namespace} as {workload} to reach {url}"])
    if why := runs_containers(kube):
        raise CannotRunHere(f"workload {workload} reaching {url}: {why}")
    deployment = kube.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{workload}")
    pod = probe_pod(deployment, url, journal.run_id, image, simulated_nodes(kube))
    path = f"/api/v1/namespaces/{namespace}/pods"
    name = pod["metadata"]["name"]
    token = journal.intend(
        {"op": "delete", "path": f"{path}/{name}", "what": f"probe Pod {namespace}/{name}"}
    )
    try:
        kube.create(path, pod)
    except StagecheckError as error:
        journal.forget(token)
        raise ProbeError(f"the probe pod for {workload} cannot be created: {error}") from None
    try:
        finished, log = _await_probe(kube, f"{path}/{name}")
    finally:
        with suppress(KubeApiError):  # already gone
            kube.delete(f"{path}/{name}")
            journal.forget(token)
    verdict = read_verdict(log, finished)
    workload_sidecar = _pods_have_sidecar(kube, namespace, deployment)
    observation = judge(workload, url, verdict, workload_sidecar)
    if not observation.ok:
        raise StepFailure(
            f"workload {namespace}/{workload}",
            f"to reach {url} from a probe with its service account and mesh settings",
            observation,
            evidence=[Evidence("probe log", log), object_yaml(finished)],
        )
    return observation.actual


def _pods_have_sidecar(kube: Kube, namespace: str, deployment: JsonObject) -> bool:
    """Whether the workload's running pods have the sidecar: an injecting webhook adds it at
    admission, so the Deployment's template never shows it."""
    labels = (deployment["spec"].get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    if not selector:
        return SIDECAR in container_names(deployment["spec"]["template"])
    pods = kube.get(f"/api/v1/namespaces/{namespace}/pods", {"labelSelector": selector})["items"]
    return any(SIDECAR in container_names(pod) for pod in pods)


def _await_probe(kube: Kube, path: str) -> tuple[JsonObject, str]:
    """The probe container's end: (pod, its log)."""
    deadline = time.monotonic() + POD_TIMEOUT_S
    while True:
        pod = kube.get(path)
        state = _probe_state(pod)
        if "terminated" in state:
            log = kube.get_text(f"{path}/log", {"container": PROBE})
            return pod, log
        waiting = state.get("waiting", {}).get("reason", "")
        if waiting in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName"):
            raise ProbeError(f"the probe pod cannot start: {waiting} (set var probe_image)")
        if waiting in CANNOT_START:  # the node says why; waiting changes nothing
            said = state.get("waiting", {}).get("message") or "(no message)"
            raise ProbeError(f"the probe pod cannot start: {waiting}: {said}")
        if time.monotonic() > deadline:
            raise ProbeError(
                f"the probe pod did not finish in {POD_TIMEOUT_S:.0f}s (phase "
                f"{pod.get('status', {}).get('phase')}, probe state {state or 'unknown'})"
            )
        time.sleep(1)


def _probe_state(pod: JsonObject) -> dict[str, Any]:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        if status.get("name") == PROBE:
            return dict(status.get("state") or {})
    return {}
