"""A stand-in for istiod's sidecar injector (OpenShift Service Mesh 2.5): NOT istiod.

A real HTTPS server in the stand-ins' process answers ``AdmissionReview`` v1 at
``/inject/<mesh namespace>/<revision>``. The ServiceMeshControlPlane stand-in (mesh.py)
registers it with the API server in the MutatingWebhookConfiguration ``istiod-<rev>-<meshNs>``
with OSSM 2.5's selectors, so the API server's admission chain decides which pods reach it;
this server then decides, by istiod's rules, whether a pod gets the sidecar.

Rules followed:
- Whether to inject (maistra/istio@maistra-2.5 pkg/kube/inject/inject.go ``injectRequired``):
  ``hostNetwork`` pods never; the namespaces kube-system, kube-public, kube-node-lease and
  local-path-storage never (initializer.go ``IgnoredNamespaces``); the value is the label
  ``sidecar.istio.io/inject`` if present, else the annotation of that name (the label wins);
  ``y``/``yes``/``true``/``on`` (any case) inject; empty: ``neverInjectSelector``, then
  ``alwaysInjectSelector``, then the policy (``enabled`` injects, ``disabled`` does not, any
  other policy never injects); any other value does not inject.
- The policy and selectors come from ConfigMap ``istio-sidecar-injector-<rev>`` in the mesh
  namespace, key ``config`` (maistra/istio-operator@maistra-2.5
  resources/helm/v2.5/istio-control/istio-discovery/templates/istiod-injector-configmap.yaml),
  re-read at every pass of the stand-ins (istiod watches its mounted copy).
- What an injected pod gets (the same repo's files/injection-template.yaml, 2.5 defaults with
  istio-cni on, as OSSM installs it): container ``istio-proxy`` (port 15090 ``http-envoy-prom``,
  readiness GET ``/healthz/ready`` on 15021, the template's volume mounts); the template's
  volumes; no init container (2.5 traffic capture is Multus: annotation
  ``k8s.v1.cni.cncf.io/networks`` gains ``v2-5-istio-cni``); labels ``maistra-version``,
  ``security.istio.io/tlsMode``, ``service.istio.io/canonical-name`` (label, else
  ``app.kubernetes.io/name``, else ``app``, else the workload name) and
  ``service.istio.io/canonical-revision`` (label, else ``app.kubernetes.io/version``, else
  ``version``, else ``latest``); annotations ``istio.io/rev``,
  ``kubectl.kubernetes.io/default-logs-container`` and ``kubectl.kubernetes.io/default-container``
  (the first app container, unless set), ``sidecar.istio.io/interceptionMode: REDIRECT`` and
  ``sidecar.istio.io/status`` (JSON ``initContainers, containers, volumes, imagePullSecrets,
  revision``, webhook.go ``SidecarInjectionStatus``). The answer is a JSON patch
  (webhook.go: ``PatchType: JSONPatch``).

Where it knowingly differs: one server answers for every control plane, the mesh and revision
in its URL path (istiod serves one revision behind Service ``istiod-<rev>``:443); the webhook is
reached by ``url`` on loopback with its own CA. The proxy's env, args and securityContext are
a short subset of the template's (nothing runs them: kwok runs the pods); the traffic
annotations (``traffic.sidecar.istio.io/*``) and ``ProxyConfig`` are not rendered. A pod that
already has an ``istio-proxy`` container keeps it as it is (istiod merges the two).
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from stagecheck.errors import StagecheckError
from stagecheck.kube.client import JsonObject
from stagecheck.sandbox.standins.base import Context, Reconciler

SIDECAR = "istio-proxy"
INJECT = "sidecar.istio.io/inject"
STATUS = "sidecar.istio.io/status"
MAISTRA_VERSION = "2.5.1"  # the v2.5 charts' maistra-version label
CNI_NETWORK = "v2-5-istio-cni"  # versions.go versionToCNINetwork[V2_5]
PROXY_IMAGE = f"registry.redhat.io/openshift-service-mesh/proxyv2-rhel8:{MAISTRA_VERSION}"
IGNORED_NAMESPACES = frozenset(
    {"kube-system", "kube-public", "kube-node-lease", "local-path-storage"}
)
INJECTOR_CONFIGMAP = "istio-sidecar-injector-{rev}"
CERT_DIR = Path("standins") / "mesh-injector"
OPENSSL_TIMEOUT_S = 30


@dataclass(frozen=True)
class InjectorConfig:
    """The ``config`` key of ``istio-sidecar-injector-<rev>``: what injectRequired reads."""

    policy: str
    never: tuple[Mapping[str, Any], ...] = ()
    always: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def parse(cls, text: str) -> InjectorConfig:
        config = yaml.safe_load(text or "") or {}
        return cls(
            policy=str(config.get("policy") or ""),
            never=tuple(config.get("neverInjectSelector") or ()),
            always=tuple(config.get("alwaysInjectSelector") or ()),
        )


def _matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A LabelSelector over labels; an empty selector matches nothing here (injectRequired
    skips ``selector.Empty()``)."""
    match = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match and not expressions:
        return False
    if any(labels.get(k) != v for k, v in match.items()):
        return False
    for expr in expressions:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def inject_required(config: InjectorConfig, pod: Mapping[str, Any], namespace: str) -> bool:
    """maistra/istio@maistra-2.5 pkg/kube/inject/inject.go ``injectRequired``."""
    if (pod.get("spec") or {}).get("hostNetwork"):
        return False
    if namespace in IGNORED_NAMESPACES:
        return False
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    value = (meta.get("annotations") or {}).get(INJECT, "")
    if INJECT in labels:  # the label is the newer API: it wins over the annotation
        value = labels[INJECT]
    value = value.lower()
    inject = value in ("y", "yes", "true", "on")
    use_default = value == ""
    if use_default and any(_matches(s, labels) for s in config.never):
        inject, use_default = False, False
    if use_default and any(_matches(s, labels) for s in config.always):
        inject, use_default = True, False
    if config.policy == "disabled":
        return False if use_default else inject
    if config.policy == "enabled":
        return True if use_default else inject
    return False  # an illegal policy: injection off


def _workload_name(meta: Mapping[str, Any]) -> str:
    """The Deployment's name for a pod its ReplicaSet makes (istio's DeploymentMeta)."""
    for owner in meta.get("ownerReferences") or []:
        if owner.get("controller") and owner.get("kind") == "ReplicaSet":
            name = str(owner.get("name") or "")
            suffix = "-" + str((meta.get("labels") or {}).get("pod-template-hash") or "")
            return name[: -len(suffix)] if suffix != "-" and name.endswith(suffix) else name
        if owner.get("controller"):
            return str(owner.get("name") or "")
    return str(meta.get("name") or meta.get("generateName") or "").rstrip("-")


VOLUMES: list[JsonObject] = [
    {"name": "workload-socket", "emptyDir": {}},
    {"name": "credential-socket", "emptyDir": {}},
    {"name": "workload-certs", "emptyDir": {}},
    {"name": "istio-envoy", "emptyDir": {"medium": "Memory"}},
    {"name": "istio-data", "emptyDir": {}},
    {
        "name": "istio-podinfo",
        "downwardAPI": {
            "items": [
                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
            ]
        },
    },
    {
        "name": "istio-token",
        "projected": {
            "sources": [
                {
                    "serviceAccountToken": {
                        "path": "istio-token",
                        "expirationSeconds": 43200,
                        "audience": "istio-ca",
                    }
                }
            ]
        },
    },
    {"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}},
]
MOUNTS = [
    ("workload-socket", "/var/run/secrets/workload-spiffe-uds"),
    ("credential-socket", "/var/run/secrets/credential-uds"),
    ("workload-certs", "/var/run/secrets/workload-spiffe-credentials"),
    ("istiod-ca-cert", "/var/run/secrets/istio"),
    ("istio-data", "/var/lib/istio/data"),
    ("istio-envoy", "/etc/istio/proxy"),
    ("istio-token", "/var/run/secrets/tokens"),
    ("istio-podinfo", "/etc/istio/pod"),
]


def _proxy_container(mesh_namespace: str, rev: str) -> JsonObject:
    return {
        "name": SIDECAR,
        "image": PROXY_IMAGE,
        "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local"],
        "ports": [{"containerPort": 15090, "protocol": "TCP", "name": "http-envoy-prom"}],
        "env": [
            {"name": "CA_ADDR", "value": f"istiod-{rev}.{mesh_namespace}.svc:15012"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            },
        ],
        "readinessProbe": {
            "httpGet": {"path": "/healthz/ready", "port": 15021},
            "initialDelaySeconds": 1,
            "periodSeconds": 2,
            "timeoutSeconds": 3,
            "failureThreshold": 30,
        },
        "volumeMounts": [{"name": n, "mountPath": p} for n, p in MOUNTS],
    }


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def injection_patch(pod: Mapping[str, Any], mesh_namespace: str, rev: str) -> list[JsonObject]:
    """The JSON patch that turns ``pod`` into the 2.5 template's injected pod."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    labels: dict[str, str] = dict(meta.get("labels") or {})
    annotations: dict[str, str] = dict(meta.get("annotations") or {})
    containers = spec.get("containers") or []
    app = [c["name"] for c in containers if c.get("name") != SIDECAR]
    patch: list[JsonObject] = []
    if not any(c.get("name") == SIDECAR for c in containers):
        patch.append(
            {
                "op": "add",
                "path": "/spec/containers/-",
                "value": _proxy_container(mesh_namespace, rev),
            }
        )
    existing = {v.get("name") for v in spec.get("volumes") or []}
    added = [v for v in VOLUMES if v["name"] not in existing]
    if "volumes" not in spec:
        patch.append({"op": "add", "path": "/spec/volumes", "value": added})
    else:
        patch += [{"op": "add", "path": "/spec/volumes/-", "value": v} for v in added]

    new_labels = {
        "maistra-version": MAISTRA_VERSION,
        "security.istio.io/tlsMode": labels.get("security.istio.io/tlsMode") or "istio",
        "service.istio.io/canonical-name": labels.get("service.istio.io/canonical-name")
        or labels.get("app.kubernetes.io/name")
        or labels.get("app")
        or _workload_name(meta),
        "service.istio.io/canonical-revision": labels.get("service.istio.io/canonical-revision")
        or labels.get("app.kubernetes.io/version")
        or labels.get("version")
        or "latest",
    }
    networks = annotations.get("k8s.v1.cni.cncf.io/networks") or ""
    status = {
        "initContainers": None,
        "containers": [SIDECAR],
        "volumes": [v["name"] for v in VOLUMES],
        "imagePullSecrets": None,
        "revision": rev,
    }
    new_annotations = {"istio.io/rev": rev}
    if app:
        for key in (
            "kubectl.kubernetes.io/default-logs-container",
            "kubectl.kubernetes.io/default-container",
        ):
            new_annotations[key] = annotations.get(key) or app[0]
    new_annotations["k8s.v1.cni.cncf.io/networks"] = (
        networks
        if CNI_NETWORK in networks.split(",")
        else ",".join(n for n in (networks, CNI_NETWORK) if n)
    )
    new_annotations["sidecar.istio.io/interceptionMode"] = (
        annotations.get("sidecar.istio.io/interceptionMode") or "REDIRECT"
    )
    new_annotations[STATUS] = json.dumps(status, separators=(",", ":"))
    for where, current, wanted in (
        ("labels", labels, new_labels),
        ("annotations", annotations, new_annotations),
    ):
        if where not in meta:
            patch.append({"op": "add", "path": f"/metadata/{where}", "value": wanted})
            continue
        for key, value in wanted.items():
            if current.get(key) != value:
                patch.append(
                    {"op": "add", "path": f"/metadata/{where}/{_pointer(key)}", "value": value}
                )
    return patch


@dataclass
class _Injector:
    """What the server answers from: the injector configuration of each (mesh, revision)."""

    configs: dict[tuple[str, str], InjectorConfig] = field(default_factory=dict)

    def review(self, path: str, review: Mapping[str, Any]) -> JsonObject:
        request = review.get("request") or {}
        version = str(review.get("apiVersion") or "admission.k8s.io/v1")
        uid = request.get("uid", "")
        response: JsonObject = {"uid": uid, "allowed": True}
        parts = [p for p in path.split("?")[0].split("/") if p]
        if len(parts) != 3 or parts[0] != "inject":
            response = {
                "uid": uid,
                "allowed": False,
                "status": {"code": 404, "message": f"no injector answers at {path}"},
            }
            return _answer(response, version)
        mesh_namespace, rev = parts[1], parts[2]
        config = self.configs.get((mesh_namespace, rev))
        if config is None:
            message = (
                f"sidecar injection failed: ConfigMap {mesh_namespace}/"
                f"{INJECTOR_CONFIGMAP.format(rev=rev)} (the injector's configuration) is missing"
            )
            return _answer(
                {"uid": uid, "allowed": False, "status": {"code": 500, "message": message}},
                version,
            )
        pod = request.get("object") or {}
        namespace = request.get("namespace") or (pod.get("metadata") or {}).get("namespace", "")
        if inject_required(config, pod, namespace):
            patch = injection_patch(pod, mesh_namespace, rev)
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
        return _answer(response, version)


def _answer(response: JsonObject, version: str) -> JsonObject:
    """The review in the version it was asked in (the API server sends the first of the
    registration's ``admissionReviewVersions`` it knows, v1beta1 here, and expects it back)."""
    return {"apiVersion": version, "kind": "AdmissionReview", "response": response}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length") or 0)
        try:
            review = json.loads(self.rfile.read(length) or b"{}")
            body = json.dumps(self.server.injector.review(self.path, review)).encode()
            code = 200
        except ValueError as error:
            body, code = f"bad AdmissionReview: {error}".encode(), 400
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return None  # the API server's answer to the pod's creator says what happened


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], injector: _Injector) -> None:
        self.injector = injector
        super().__init__(address, _Handler)


def _openssl(*args: str) -> None:
    done = subprocess.run(
        ["openssl", *args], capture_output=True, text=True, timeout=OPENSSL_TIMEOUT_S
    )
    if done.returncode != 0:
        raise StagecheckError(f"openssl {args[0]} failed: {done.stderr.strip()[-500:]}")


def ensure_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A self-signed CA and a serving certificate for 127.0.0.1, made once per state folder.
    Returns (ca, certificate, key)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = folder / "ca.crt", folder / "ca.key"
    cert, key = folder / "tls.crt", folder / "tls.key"
    if all(p.exists() for p in (ca, ca_key, cert, key)):
        return ca, cert, key
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "3650",
        "-subj",
        "/CN=sandbox mesh injector CA",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
    )
    request = folder / "tls.csr"
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=istiod.sandbox",
        "-keyout",
        str(key),
        "-out",
        str(request),
    )
    extensions = folder / "tls.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        str(request),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "3650",
        "-extfile",
        str(extensions),
        "-out",
        str(cert),
    )
    key.chmod(0o600)
    ca_key.chmod(0o600)
    return ca, cert, key


def _port(folder: Path) -> int:
    """The port it served on before if still free (the registered URL stays valid), else a
    new one."""
    remembered = folder / "port"
    try:
        wanted = int(remembered.read_text())
    except (FileNotFoundError, ValueError):
        wanted = 0
    for port in (wanted, 0) if wanted else (0,):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            chosen = int(probe.getsockname()[1])
        remembered.write_text(str(chosen))
        return chosen
    raise StagecheckError("no free port for the mesh injector")


class SidecarInjectorStandin(Reconciler):
    """The webhook server, and each pass the injector configuration of every control plane."""

    name = "sidecar-injector-webhook-standin"

    def __init__(self) -> None:
        self.injector = _Injector()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        self.ca_bundle = ""

    def start(self, ctx: Context) -> None:
        folder = ctx.state_dir / CERT_DIR
        ca, cert, key = ensure_certificates(folder)
        server = _Server(("127.0.0.1", _port(folder)), self.injector)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=self.name, daemon=True)
        self._thread.start()
        self.base_url = f"https://127.0.0.1:{server.server_address[1]}"
        self.ca_bundle = base64.b64encode(ca.read_bytes()).decode()

    def url(self, mesh_namespace: str, rev: str) -> str:
        return f"{self.base_url}/inject/{mesh_namespace}/{rev}"

    def reconcile(self, ctx: Context) -> None:
        configs: dict[tuple[str, str], InjectorConfig] = {}
        found = ctx.kube.get("/api/v1/configmaps", {"labelSelector": "istio.io/rev"})
        for cm in found.get("items") or []:
            meta = cm["metadata"]
            rev = (meta.get("labels") or {}).get("istio.io/rev")
            if rev and meta["name"] == INJECTOR_CONFIGMAP.format(rev=rev):
                config = (cm.get("data") or {}).get("config", "")
                configs[(meta["namespace"], rev)] = InjectorConfig.parse(config)
        self.injector.configs = configs  # one assignment: the server threads see old or new

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
