"""The DSPO and docling-operator stand-ins against a real control plane (kube-apiserver,
controller-manager, scheduler, kwok) and an S3 endpoint on loopback that checks Signature V4
as S3 does. Expected values come from the operators' sources, not from the world files:
opendatahub-io/data-science-pipelines-operator @v2.17.0 (controllers/dspipeline_controller.go,
controllers/dspastatus/dspa_status.go, controllers/storage.go, controllers/util/util.go,
config/internal/apiserver/**) and docling-project/docling-operator @bf3d436
(internal/reconcilers/*.go)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from stagecheck.errors import KubeApiError
from stagecheck.kube.client import Kube
from stagecheck.sandbox.controlplane import ControlPlane
from stagecheck.sandbox.standins.process import StandIns
from stagecheck.sandbox.world import apply_documents, load_documents
from tests import support
from tests.support import ROOT, LocalHandler, local_http

CRDS = ROOT / "stagecheck" / "sandbox" / "worlds" / "stage2" / "01-crds.yaml"
NAMESPACE = "dspa-docling-test"
ACCESS_KEY = "stage-access"
SECRET_KEY = "stage-secret-0123456789"
BUCKET = "kfp-artifacts"
S3_HOST = "minio.minio.svc.cluster.local:9000"
DSPA_API = f"/apis/datasciencepipelinesapplications.opendatahub.io/v1/namespaces/{NAMESPACE}"
DOCLING_API = f"/apis/docling.github.io/v1alpha1/namespaces/{NAMESPACE}/doclingserves"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
ROUTES = f"/apis/route.openshift.io/v1/namespaces/{NAMESPACE}/routes"
DSPO_ORDER = [
    "DatabaseAvailable",
    "ObjectStoreAvailable",
    "APIServerReady",
    "PersistenceAgentReady",
    "ScheduledWorkflowReady",
    "WorkflowControllerReady",
    "MLMDProxyReady",
    "WebhookReady",
    "Ready",
]
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method."
)


class FakeS3(LocalHandler):
    """Just enough of S3 for StatObject: GetBucketLocation and HeadObject, each request's
    Signature V4 checked with the one key pair it knows. Every request is recorded."""

    buckets: set[str] = {BUCKET}
    seen: list[tuple[str, str, bool]] = []

    def do_GET(self) -> None:
        self._answer("GET")

    def do_HEAD(self) -> None:
        self._answer("HEAD")

    def _answer(self, method: str) -> None:
        url = urlsplit(self.path)
        bucket, _, key = url.path.lstrip("/").partition("/")
        signed = _signature_ok(method, url.path, url.query, self.headers)
        FakeS3.seen.append((method, url.path, signed))
        if not signed:
            self._error(403, "SignatureDoesNotMatch", SIGNATURE_MISMATCH, method)
        elif bucket not in FakeS3.buckets:
            self._error(404, "NoSuchBucket", "The specified bucket does not exist", method)
        elif method == "GET" and "location" in dict(parse_qsl(url.query, True)):
            body = (
                b'<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint '
                b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></LocationConstraint>'
            )
            self._send(200, body)
        else:
            self._error(404, "NoSuchKey", "The specified key does not exist.", method)

    def _error(self, status: int, code: str, message: str, method: str) -> None:
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>1</RequestId></Error>"
        ).encode()
        self._send(status, b"" if method == "HEAD" else body)  # a HEAD answer has no body

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _signature_ok(method: str, path: str, query: str, headers: Any) -> bool:
    """AWS Signature V4 (the S3 variant: the payload hash comes from x-amz-content-sha256)."""
    auth = headers.get("Authorization") or ""
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return False
    fields = dict(
        part.strip().split("=", 1) for part in auth[len("AWS4-HMAC-SHA256 ") :].split(",")
    )
    access, date, region, service, _ = fields["Credential"].split("/")
    if access != ACCESS_KEY:
        return False
    names = fields["SignedHeaders"].split(";")
    canonical_headers = "".join(f"{n}:{' '.join(str(headers.get(n)).split())}\n" for n in names)
    canonical_query = "&".join(f"{k}={v}" for k, v in sorted(parse_qsl(query, True)))
    canonical = "\n".join(
        [
            method,
            path,
            canonical_query,
            canonical_headers,
            fields["SignedHeaders"],
            headers.get("x-amz-content-sha256") or "",
        ]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", headers.get("x-amz-date") or "", scope,
         hashlib.sha256(canonical.encode()).hexdigest()]
    )  # fmt: skip
    key = f"AWS4{SECRET_KEY}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["Signature"])


@pytest.fixture(scope="module")
def s3_port() -> Iterator[int]:
    with local_http(FakeS3) as port:
        yield port


@pytest.fixture(scope="module")
def standins(control_plane: ControlPlane, kube: Kube, s3_port: int) -> Iterator[StandIns]:
    # Where the stand-ins find the data plane's services (as the sandbox's data plane records
    # them): the DSPA's minio.minio.svc host is answered by the "s3" service.
    endpoints = control_plane.state / "dataplane" / "endpoints.json"
    endpoints.parent.mkdir(parents=True, exist_ok=True)
    endpoints.write_text(json.dumps({"services": {"s3": f"http://127.0.0.1:{s3_port}"}}))
    process = StandIns(control_plane.state, ROOT)
    process.start()
    # As `scripts/sandbox up` does: the stand-ins run before the CRDs they reconcile exist (on
    # a fresh control plane, i.e. this module alone: a kind served only later is found then).
    apply_documents(kube, load_documents(CRDS))
    apply_documents(
        kube, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}]
    )
    assert eventually(lambda: _lists(kube, f"{DSPA_API}/datasciencepipelinesapplications"), 30)
    assert eventually(lambda: _lists(kube, DOCLING_API), 30)
    try:
        yield process
    finally:
        process.stop()
        endpoints.unlink(missing_ok=True)


def _lists(kube: Kube, path: str) -> bool:
    """A CRD's storage answers (just after its creation it says "(re)initializing")."""
    try:
        kube.get(path)
    except KubeApiError:
        return False
    return True


def eventually(read: Callable[[], Any], timeout_s: float = 60.0) -> Any:
    return support.eventually(read, timeout_s, 0.2)


def _secret(name: str, secret_key: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "stringData": {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": secret_key},
    }


def _dspa(name: str, secret: str, bucket: str = BUCKET) -> dict[str, Any]:
    return {
        "apiVersion": "datasciencepipelinesapplications.opendatahub.io/v1",
        "kind": "DataSciencePipelinesApplication",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "dspVersion": "v2",
            "apiServer": {"deploy": True, "enableSamplePipeline": False},
            "database": {"mariaDB": {"deploy": True}},
            "objectStorage": {
                "externalStorage": {
                    "host": "minio.minio.svc.cluster.local",
                    "port": "9000",
                    "bucket": bucket,
                    "scheme": "http",
                    "s3CredentialsSecret": {
                        "secretName": secret,
                        "accessKey": "AWS_ACCESS_KEY_ID",
                        "secretKey": "AWS_SECRET_ACCESS_KEY",
                    },
                }
            },
        },
    }


def _conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def _dspa_ready(kube: Kube, name: str) -> dict[str, Any] | None:
    dspa = kube.get(f"{DSPA_API}/datasciencepipelinesapplications/{name}")
    ready = _conditions(dspa).get("Ready") or {}
    return dspa if ready.get("status") == "True" else None


def test_a_dspa_becomes_ready_with_dspo_conditions_and_objects(
    standins: StandIns, kube: Kube
) -> None:
    apply_documents(kube, [_secret("good-keys", SECRET_KEY)])
    history: list[dict[str, Any]] = []
    path = f"{DSPA_API}/datasciencepipelinesapplications"
    stream = kube.watch(path, {"fieldSelector": "metadata.name=dspa"}, 90)

    def record() -> None:
        for event in stream:
            history.append(event.object)
            ready = _conditions(event.object).get("Ready") or {}
            if ready.get("status") == "True":
                return

    watcher = threading.Thread(target=record, daemon=True)
    watcher.start()
    kube.create(path, _dspa("dspa", "good-keys"))
    watcher.join(90)
    stream.abort()
    dspa = _dspa_ready(kube, "dspa")
    assert dspa is not None, history[-1:] or "no event"

    # dspa_status.go GetConditions: this order, every pass
    assert [c["type"] for c in dspa["status"]["conditions"]] == DSPO_ORDER
    found = _conditions(dspa)
    assert (found["DatabaseAvailable"]["reason"], found["DatabaseAvailable"]["message"]) == (
        "DatabaseAvailable",
        "Database connectivity successfully verified",
    )
    assert (found["ObjectStoreAvailable"]["reason"], found["ObjectStoreAvailable"]["message"]) == (
        "ObjectStoreAvailable",
        "Object Store connectivity successfully verified",
    )
    for type_, component in [
        ("APIServerReady", "ds-pipeline-dspa"),
        ("PersistenceAgentReady", "ds-pipeline-persistenceagent-dspa"),
        ("ScheduledWorkflowReady", "ds-pipeline-scheduledworkflow-dspa"),
        ("WorkflowControllerReady", "ds-pipeline-workflow-controller-dspa"),
        # mlmd.go's prefix: the proxy's readiness is read from the scheduled workflow
        ("MLMDProxyReady", "ds-pipeline-scheduledworkflow-dspa"),
    ]:
        assert found[type_]["status"] == "True", found[type_]
        assert found[type_]["reason"] == "MinimumReplicasAvailable"
        assert found[type_]["message"] == f"Component [{component}] is minimally available."
    assert (found["WebhookReady"]["status"], found["WebhookReady"]["reason"]) == (
        "False",
        "NotApplicable",
    )
    assert (found["Ready"]["reason"], found["Ready"]["message"]) == (
        "MinimumReplicasAvailable",
        "All components are ready.",
    )

    # before the prerequisites were both True, no component condition was decided (DSPO
    # deploys no component then)
    for obj in history:
        found_then = _conditions(obj)
        if found_then and found_then["DatabaseAvailable"]["status"] != "True":
            assert found_then["APIServerReady"]["status"] == "Unknown", found_then
    assert any(
        (_conditions(o).get("DatabaseAvailable") or {}).get("status") == "False" for o in history
    ), "the database was never seen unavailable while mariadb-dspa started"

    # the real S3 call: StatObject(bucket, "some-random-object"), validly signed
    assert ("HEAD", f"/{BUCKET}/some-random-object", True) in FakeS3.seen

    # GetComponents: both URLs, since the Service and the Route exist
    route = kube.get(f"{ROUTES}/ds-pipeline-dspa")
    assert dspa["status"]["components"]["apiServer"] == {
        "url": f"https://ds-pipeline-dspa.{NAMESPACE}.svc.cluster.local:8443",
        "externalUrl": f"https://{route['spec']['host']}",
    }
    assert route["spec"]["host"] == f"ds-pipeline-dspa-{NAMESPACE}.apps.sandbox.local"
    assert route["spec"]["port"] == {"targetPort": "oauth"}
    assert (
        route["spec"]["tls"]["termination"] == "reencrypt"
    )  # openshift/api route/v1: edge, reencrypt, passthrough

    api = kube.get(f"{DEPLOYMENTS}/ds-pipeline-dspa")
    labels = {"app": "ds-pipeline-dspa", "component": "data-science-pipelines", "dspa": "dspa"}
    assert api["metadata"]["labels"] == labels
    assert api["spec"]["template"]["metadata"]["labels"] == labels
    containers = api["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["ds-pipeline-api-server", "oauth-proxy"]
    assert api["metadata"]["ownerReferences"][0]["name"] == "dspa"
    for name in (
        "mariadb-dspa",
        "ds-pipeline-persistenceagent-dspa",
        "ds-pipeline-scheduledworkflow-dspa",
        "ds-pipeline-workflow-controller-dspa",
    ):
        assert kube.get(f"{DEPLOYMENTS}/{name}")["metadata"]["labels"]["dspa"] == "dspa"
    service = kube.get(f"/api/v1/namespaces/{NAMESPACE}/services/ds-pipeline-dspa")
    ports = {(p["name"], p["port"]) for p in service["spec"]["ports"]}
    assert ports == {("oauth", 8443), ("http", 8888), ("grpc", 8887)}
    assert service["spec"]["selector"] == {
        "app": "ds-pipeline-dspa",
        "component": "data-science-pipelines",
    }
    role = kube.get(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NAMESPACE}/roles/ds-pipeline-user-access-dspa"
    )
    assert role["rules"] == [
        {"apiGroups": ["route.openshift.io"], "resources": ["routes"], "verbs": ["get"]}
    ]


@pytest.fixture
def unschedulable_nodes(kube: Kube) -> Iterator[list[str]]:
    """Every node cordoned, so pods stay Pending (as on a full cluster); uncordoned after."""
    names = [n["metadata"]["name"] for n in kube.get("/api/v1/nodes")["items"]]
    for name in names:
        kube.patch(f"/api/v1/nodes/{name}", {"spec": {"unschedulable": True}})
    try:
        yield names
    finally:
        for name in names:
            kube.patch(f"/api/v1/nodes/{name}", {"spec": {"unschedulable": False}})


def test_components_are_deploying_until_their_pods_are_ready(
    standins: StandIns, kube: Kube, unschedulable_nodes: list[str]
) -> None:
    dspa = _dspa("pending", "good-keys")
    dspa["spec"]["database"]["disableHealthCheck"] = True  # database.go: assumed available
    apply_documents(kube, [_secret("good-keys", SECRET_KEY), dspa])
    path = f"{DSPA_API}/datasciencepipelinesapplications/pending"
    assert eventually(
        lambda: (
            (_conditions(kube.get(path)).get("APIServerReady") or {}).get("reason") == "Deploying"
        )
    ), kube.get(path).get("status")
    standins.await_settled()
    found = _conditions(kube.get(path))
    deploying = [
        ("APIServerReady", "ds-pipeline-pending"),
        ("PersistenceAgentReady", "ds-pipeline-persistenceagent-pending"),
        ("ScheduledWorkflowReady", "ds-pipeline-scheduledworkflow-pending"),
        ("WorkflowControllerReady", "ds-pipeline-workflow-controller-pending"),
        ("MLMDProxyReady", "ds-pipeline-scheduledworkflow-pending"),
    ]
    for type_, component in deploying:
        assert (found[type_]["status"], found[type_]["reason"]) == ("False", "Deploying")
        assert found[type_]["message"] == f"Component [{component}] is deploying."
    # dspa_status.go: the failing conditions' messages, each followed by " \n"
    assert found["Ready"]["message"] == "".join(
        f"Component [{c}] is deploying. \n" for _, c in deploying
    )
    for name in unschedulable_nodes:  # room on the nodes: kwok runs the pods, they are Ready
        kube.patch(f"/api/v1/nodes/{name}", {"spec": {"unschedulable": False}})
    assert eventually(lambda: _dspa_ready(kube, "pending"), 90), kube.get(path)["status"]


def test_wrong_keys_fail_the_object_store_for_real_and_deploy_no_component(
    standins: StandIns, kube: Kube
) -> None:
    wrong = "not-the-key-the-store-knows"
    apply_documents(kube, [_secret("wrong-keys", wrong), _dspa("wrongkeys", "wrong-keys")])

    def store_failed() -> dict[str, Any] | None:
        dspa = kube.get(f"{DSPA_API}/datasciencepipelinesapplications/wrongkeys")
        store = _conditions(dspa).get("ObjectStoreAvailable") or {}
        return dspa if store.get("status") == "False" else None

    dspa = eventually(store_failed)
    assert dspa is not None
    standins.await_settled()
    dspa = kube.get(f"{DSPA_API}/datasciencepipelinesapplications/wrongkeys")
    found = _conditions(dspa)
    store = found["ObjectStoreAvailable"]
    assert store["reason"] == "FailingToDeploy"
    # storage.go: "Could not connect to (<host:port>), Error: <the S3 error>"
    assert store["message"] == f"Could not connect to ({S3_HOST}), Error: {SIGNATURE_MISMATCH}"
    assert wrong not in json.dumps(dspa) and SECRET_KEY not in json.dumps(dspa)
    assert found["DatabaseAvailable"]["status"] == "True"
    for type_ in DSPO_ORDER[2:-1]:
        assert (found[type_]["status"], found[type_]["reason"]) == ("Unknown", "Unknown")
    assert found["Ready"]["status"] == "False"
    assert store["message"] in found["Ready"]["message"]
    # the database is deployed before the checks, the components only after both pass
    assert kube.get_or_none(f"{DEPLOYMENTS}/mariadb-wrongkeys") is not None
    assert kube.get_or_none(f"{DEPLOYMENTS}/ds-pipeline-wrongkeys") is None
    assert dspa["status"]["components"] == {"mlmdProxy": {}, "apiServer": {}}

    # level-triggered: the right key in the Secret, and the DSPA recovers
    apply_documents(kube, [_secret("wrong-keys", SECRET_KEY)])
    assert eventually(lambda: _dspa_ready(kube, "wrongkeys"), 90)


def test_a_missing_bucket_passes_the_object_store_check_as_dspo_does(
    standins: StandIns, kube: Kube
) -> None:
    apply_documents(kube, [_dspa("nobucket", "good-keys", bucket="never-made")])

    def store_decided() -> dict[str, Any] | None:
        dspa = kube.get(f"{DSPA_API}/datasciencepipelinesapplications/nobucket")
        store = _conditions(dspa).get("ObjectStoreAvailable") or {}
        return store if store.get("status") in ("True", "False") else None

    store = eventually(store_decided)
    assert store and store["status"] == "True", store  # NoSuchBucket counts as healthy


def _docling(name: str, route: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "apiServer": {"image": "quay.io/docling-project/docling-serve-cpu:v1.38.2", "instances": 1},
        "engine": {"local": {"numWorkers": 2}},
    }
    if route is not None:
        spec["route"] = route
    return {
        "apiVersion": "docling.github.io/v1alpha1",
        "kind": "DoclingServe",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def _docling_condition(kube: Kube, name: str, type_: str, status: str) -> dict[str, Any] | None:
    serve = kube.get(f"{DOCLING_API}/{name}")
    found = _conditions(serve).get(type_) or {}
    return serve if found.get("status") == status else None


def test_a_doclingserve_gets_the_operators_objects_and_status_never_ready(
    standins: StandIns, kube: Kube
) -> None:
    apply_documents(kube, [_docling("docling", {"enabled": True})])
    serve = eventually(lambda: _docling_condition(kube, "docling", "DeploymentAvailable", "True"))
    assert serve is not None, kube.get(f"{DOCLING_API}/docling").get("status")
    serve = eventually(lambda: _docling_condition(kube, "docling", "Admitted", "True"))
    assert serve is not None, kube.get(f"{DOCLING_API}/docling").get("status")
    standins.await_settled()
    serve = kube.get(f"{DOCLING_API}/docling")

    labels = {"app": "docling-serve", "doclingserve_cr": "docling"}
    deployment = kube.get(f"{DEPLOYMENTS}/docling-deployment")
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "docling-serve"
    assert container["ports"][0]["containerPort"] == 5001
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "docling-serve"
    sa = kube.get(f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/docling-serve")
    assert sa["metadata"]["labels"] == labels
    service = kube.get(f"/api/v1/namespaces/{NAMESPACE}/services/docling-service")
    assert service["spec"]["selector"] == labels
    assert [(p["name"], p["port"]) for p in service["spec"]["ports"]] == [("http", 5001)]
    route = kube.get(f"{ROUTES}/docling-route")
    assert route["spec"]["to"]["name"] == "docling-service"
    assert route["spec"]["port"] == {"targetPort": "http"}
    assert route["spec"]["tls"]["termination"] == "edge"

    found = _conditions(serve)
    assert "Ready" not in found and "phase" not in serve["status"]
    assert serve["status"]["observedGeneration"] == serve["metadata"]["generation"]
    assert (found["DeploymentCreated"]["status"], found["DeploymentCreated"]["reason"]) == (
        "True",
        "DeploymentCreated",
    )
    available = next(c for c in deployment["status"]["conditions"] if c["type"] == "Available")
    assert (
        found["DeploymentAvailable"]["reason"] == available["reason"] == "MinimumReplicasAvailable"
    )
    last = deployment["status"]["conditions"][-1]
    assert (found[last["type"]]["status"], found[last["type"]]["reason"]) == (
        last["status"],
        last["reason"],
    )
    assert found["ServiceCreated"]["status"] == "True"
    assert (found["RouteCreated"]["status"], found["RouteCreated"]["reason"]) == (
        "True",
        "RouteCreated",
    )
    # the route stand-in's Admitted has no reason; status.go makes it "Unknown"
    assert (found["Admitted"]["status"], found["Admitted"]["reason"]) == ("True", "Unknown")

    # route disabled: the Route goes, RouteCreated says so, the copied Admitted stays
    apply_documents(kube, [_docling("docling", {"enabled": False})])
    assert eventually(lambda: kube.get_or_none(f"{ROUTES}/docling-route") is None)
    serve = eventually(
        lambda: (
            (_conditions(kube.get(f"{DOCLING_API}/docling")).get("RouteCreated") or {}).get(
                "reason"
            )
            == "RouteDisabled"
        )
    )
    assert serve


def test_a_doclingserve_without_spec_route_reports_the_route_status_error(
    standins: StandIns, kube: Kube
) -> None:
    apply_documents(kube, [_docling("noroute", None)])
    serve = eventually(lambda: _docling_condition(kube, "noroute", "RouteCreated", "Unknown"))
    assert serve is not None, kube.get(f"{DOCLING_API}/noroute").get("status")
    created = _conditions(serve)["RouteCreated"]
    assert created["reason"] == "RouteStatusError"
    assert created["message"] == 'routes.route.openshift.io "noroute-route" not found'
    assert "Admitted" not in _conditions(serve)
    assert kube.get_or_none(f"{ROUTES}/noroute-route") is None


def test_a_refused_route_is_copied_as_refused(standins: StandIns, kube: Kube) -> None:
    host = f"clash-route-{NAMESPACE}.apps.sandbox.local"
    squatter = {
        "apiVersion": "route.openshift.io/v1",
        "kind": "Route",
        "metadata": {"name": "squatter", "namespace": NAMESPACE},
        # the same host and path as route.go's docling route ("/")
        "spec": {"host": host, "path": "/", "to": {"kind": "Service", "name": "elsewhere"}},
    }
    apply_documents(kube, [squatter])
    time.sleep(1.1)  # creation timestamps have one-second resolution: the docling route is younger
    apply_documents(kube, [_docling("clash", {"enabled": True})])
    serve = eventually(lambda: _docling_condition(kube, "clash", "Admitted", "False"))
    assert serve is not None, kube.get(f"{DOCLING_API}/clash").get("status")
    assert _conditions(serve)["Admitted"]["reason"] == "HostAlreadyClaimed"


def test_a_settled_pass_writes_nothing(standins: StandIns, kube: Kube) -> None:
    standins.await_settled()

    def versions() -> dict[str, str]:
        found: dict[str, str] = {}
        for path in (
            f"{DSPA_API}/datasciencepipelinesapplications",
            DOCLING_API,
            DEPLOYMENTS,
            f"/api/v1/namespaces/{NAMESPACE}/services",
            ROUTES,
        ):
            for item in kube.get(path)["items"]:
                found[f"{path}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
        return found

    before = versions()
    assert any("/datasciencepipelinesapplications/" in k for k in before), before
    assert any("/doclingserves/" in k for k in before), before
    time.sleep(6)  # longer than the S3 recheck: a recheck with the same answer writes nothing
    standins.await_settled()
    assert versions() == before


def test_the_secret_value_never_reaches_the_stand_ins_log(
    control_plane: ControlPlane, standins: StandIns
) -> None:
    log = standins.log.read_text(errors="replace") if standins.log.exists() else ""
    assert SECRET_KEY not in log and base64.b64encode(SECRET_KEY.encode()).decode() not in log
