"""A stand-in for the data-science-pipelines-operator (DSPO): NOT the DSPO.

It reconciles ``DataSciencePipelinesApplication`` (datasciencepipelinesapplications.
opendatahub.io/v1) as DSPO v2.17.0 does (RHOAI 2.25; opendatahub-io/data-science-pipelines-
operator @v2.17.0):

- Status (controllers/dspipeline_controller.go ``Reconcile``/``updateStatus``,
  controllers/dspastatus/dspa_status.go): every pass writes the whole status. Conditions in
  DSPO's order: DatabaseAvailable, ObjectStoreAvailable, APIServerReady,
  PersistenceAgentReady, ScheduledWorkflowReady, WorkflowControllerReady, MLMDProxyReady,
  WebhookReady, Ready. Each starts U/``Unknown`` with an empty message; a True condition of the
  prerequisites has its type as reason. ``lastTransitionTime`` is kept while a condition's
  status is unchanged. Ready is T/``MinimumReplicasAvailable``/"All components are ready."
  when every other condition is T or has reason ``NotApplicable``, else F/
  ``MinimumReplicasAvailable`` with the others' messages joined as ``"<message> \\n"``.
- ``dspVersion`` other than ``v2``: every prerequisite and component F/``UnsupportedVersion``
  (WorkflowController and Webhook stay U), nothing is deployed.
- Parameters (controllers/dspipeline_params.go ``SetupObjectParams``): the keys are read from
  the Secret ``spec.objectStorage.externalStorage.s3CredentialsSecret`` names; a missing Secret
  or key leaves every condition U (DSPO requeues without deciding).
- Database (controllers/database.go): with the default MariaDB (``spec.database.mariaDB.
  deploy``, the CRD's default) the Deployment and Service ``mariadb-<d>`` and the Secret
  ``ds-pipeline-db-<d>`` (key ``password``, made once) are applied first, then the database is
  checked. ``spec.database.disableHealthCheck`` skips the check.
- Object store (controllers/storage.go ``ConnectAndQueryObjStore``): a real S3 call with the
  Secret's keys: ``StatObject(bucket, "some-random-object")`` against ``host:port`` (``secure``
  from ``scheme``), no region given (so the client first asks the bucket's location, as
  minio-go does), 15 s timeout. ``NoSuchKey`` or ``NoSuchBucket`` is healthy (a missing bucket
  passes); anything else is F/``FailingToDeploy``/"Could not connect to (<host:port>), Error:
  <the S3 error's message>". The cluster address is mapped to the sandbox's process answering
  for it (``Context.in_cluster_url``; ``minio`` -> the data plane's ``s3``).
  ``spec.objectStorage.disableHealthCheck`` skips the call.
- Either check failing: no component is deployed and the component conditions stay U.
- Components, in DSPO's order (controllers/apiserver.go, persistence_agent.go,
  scheduled_workflow.go, workflow_controller.go, mlmd.go; templates config/internal/**):
  WebhookReady F/``NotApplicable`` unless ``apiServer.pipelineStore: kubernetes``; the API
  server (Deployment ``ds-pipeline-<d>`` with containers ``ds-pipeline-api-server`` (http 8888,
  grpc 8887) and ``oauth-proxy`` (oauth 8443); Service ``ds-pipeline-<d>`` (oauth 8443 only with
  ``enableOauth``, http 8888, grpc 8887); Role ``ds-pipeline-user-access-<d>`` (get on
  route.openshift.io routes, as the v2.17 template writes it: no resourceNames); Route
  ``ds-pipeline-<d>`` (targetPort oauth, Reencrypt) only with ``enableOauth``), then
  ``ds-pipeline-persistenceagent-<d>``, ``ds-pipeline-scheduledworkflow-<d>``,
  ``ds-pipeline-workflow-controller-<d>`` (``workflowController.deploy``, default true, else
  F/``NotApplicable``), and MLMD (``ds-pipeline-metadata-envoy-<d>``,
  ``ds-pipeline-metadata-grpc-<d>``, Services ``ds-pipeline-md-<d>`` and
  ``ds-pipeline-metadata-grpc-<d>``, Route ``ds-pipeline-md-<d>``). Labels ``app=<name>``,
  ``component=data-science-pipelines``, ``dspa=<d>`` on Deployments and pods; Services select
  ``app`` and ``component``.
- Each component condition by ``evaluateCondition``: Deployment missing -> F/
  ``ComponentDeploymentNotFound``; replicas 0 -> F/``MinimumReplicasAvailable`` (scaled down);
  Available -> T/``MinimumReplicasAvailable``/"Component [x] is minimally available.";
  Progressing F with ProgressDeadlineExceeded or ReplicaSetCreateError, ReplicaFailure T, a
  Failed pod, or a CrashLoopBackOff container -> F/``FailingToDeploy``; otherwise F/
  ``Deploying``/"Component [x] is deploying.". MLMDProxyReady judges
  ``ds-pipeline-scheduledworkflow-<d>`` (DSPO's prefix in mlmd.go).
- ``status.components`` (``GetComponents``, controllers/util/util.go): ``apiServer`` (and
  ``mlmdProxy``) get ``url`` (``https://<svc>.<ns>.svc.cluster.local:8443`` when the Service
  has port 8443 or 443, else ``http://...:<last port>``) and ``externalUrl``
  (``https://<route spec.host>``) only when both the Service and the Route exist; Admitted is
  not looked at.

Where it knowingly differs:
- DatabaseAvailable: the sandbox runs no MariaDB process, so instead of connecting and running
  ``SELECT 1;`` it judges the ``mariadb-<d>`` Deployment's ``Available`` condition (T then, else
  F/``FailingToDeploy`` with a connection-refused message like the driver's, naming the
  Service instead of its IP). An external database (``spec.database.externalDB``) has no
  process here: DatabaseAvailable is F and says so.
- A DSPA-managed Minio (``spec.objectStorage.minio``) is not deployed: ObjectStoreAvailable is
  F and says so. A host the sandbox does not map fails like an unresolvable name.
- OpenShift's service-ca is assumed (the MLMD certificate wait of mlmd.go is skipped); no
  finalizer is added (owner references clean up); no NetworkPolicies, ServiceAccounts,
  ConfigMaps, UI, sample pipeline or webhook deployment (``pipelineStore: kubernetes`` reports
  WebhookReady F/``ComponentDeploymentNotFound`` and stops there, as DSPO does while its
  webhook is missing); pod templates carry only names, images, ports and probes.
- The S3 result is reused for a few seconds while the endpoint, bucket and keys are unchanged
  (DSPO checks on each reconcile, which its watches trigger).
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from stagecheck.kube.client import JsonObject, secret_value
from stagecheck.sandbox.standins.base import (
    Context,
    Reconciler,
    apply_owned,
    delete_owned,
    now,
    write_status,
)

KIND = "DataSciencePipelinesApplication.datasciencepipelinesapplications.opendatahub.io"
ROUTE = "Route.route.openshift.io"
COMPONENT = "data-science-pipelines"
PROBE_OBJECT = "some-random-object"
S3_TIMEOUT_S = 15.0
S3_RECHECK_S = 5.0
ORDER = (
    "DatabaseAvailable",
    "ObjectStoreAvailable",
    "APIServerReady",
    "PersistenceAgentReady",
    "ScheduledWorkflowReady",
    "WorkflowControllerReady",
    "MLMDProxyReady",
    "WebhookReady",
)
UNSUPPORTED = (
    "DatabaseAvailable",
    "ObjectStoreAvailable",
    "APIServerReady",
    "PersistenceAgentReady",
    "ScheduledWorkflowReady",
    "MLMDProxyReady",
)
IMAGES = {  # DSPO takes them from its config (params.env); kwok pulls nothing
    "ds-pipeline-api-server": "quay.io/opendatahub/ds-pipelines-api-server:v2.17.0",
    "oauth-proxy": "registry.redhat.io/openshift4/ose-oauth-proxy:v4.14",
    "ds-pipeline-persistenceagent": "quay.io/opendatahub/ds-pipelines-persistenceagent:v2.17.0",
    "ds-pipeline-scheduledworkflow": "quay.io/opendatahub/ds-pipelines-scheduledworkflow:v2.17.0",
    "ds-pipeline-workflow-controller": "quay.io/opendatahub/ds-pipelines-argo-workflowcontroller:3.4",  # noqa: E501
    "mariadb": "registry.redhat.io/rhel8/mariadb-103:1",
    "metadata-envoy": "quay.io/opendatahub/ds-pipelines-metadata-envoy:v2.17.0",
    "metadata-grpc": "quay.io/opendatahub/mlmd-grpc-server:v2.17.0",
}  # fmt: skip
# The secret-key message SeaweedFS and S3 send; minio-go's texts for errors without a body.
MINIO_GO_TEXT = {"AccessDenied": "Access Denied."}


class Conditions:
    """DSPO's DSPAStatus: one condition per type, all Unknown until set."""

    def __init__(self) -> None:
        self.by_type: dict[str, tuple[str, str, str]] = {
            t: ("Unknown", "Unknown", "") for t in ORDER
        }

    def true(self, type_: str, message: str) -> None:
        self.by_type[type_] = ("True", type_, message)

    def false(self, type_: str, reason: str, message: str) -> None:
        self.by_type[type_] = ("False", reason, message)

    def set(self, type_: str, status: str, reason: str, message: str) -> None:
        self.by_type[type_] = (status, reason, message)

    def written(
        self, previous: list[JsonObject], ready: tuple[str, str, str] | None
    ) -> list[JsonObject]:
        made = [(t, *self.by_type[t]) for t in ORDER]
        if ready is None:
            failing = [m for _, s, r, m in made if s != "True" and r != "NotApplicable"]
            ready = (
                ("True", "MinimumReplicasAvailable", "All components are ready.")
                if not failing
                else ("False", "MinimumReplicasAvailable", "".join(f"{m} \n" for m in failing))
            )
        made.append(("Ready", *ready))
        old = {c.get("type"): c for c in previous}
        result = []
        for type_, status, reason, message in made:
            before = old.get(type_) or {}
            since = before.get("lastTransitionTime") if before.get("status") == status else None
            result.append(
                {
                    "type": type_,
                    "status": status,
                    "lastTransitionTime": since or now(),
                    "reason": reason,
                    "message": message,
                }
            )
        return result


@dataclass
class _StoreCheck:
    key: tuple[str, ...]
    at: float
    error: str | None


class ParamsError(Exception):
    """DSPO's ExtractParams failed: it requeues and decides nothing."""


@dataclass
class _Params:
    name: str
    namespace: str
    spec: JsonObject
    host: str = ""
    port: str = ""
    bucket: str = ""
    secure: bool = False
    access_key: str = ""
    secret_key: str = ""
    store_problem: str | None = None


class PipelinesOperatorStandin(Reconciler):
    name = "data-science-pipelines-operator-standin"

    def __init__(self) -> None:
        self._checks: dict[str, _StoreCheck] = {}

    def reconcile(self, ctx: Context) -> None:
        if ctx.served(KIND) is None:
            return
        for dspa in ctx.items(KIND):
            if dspa["metadata"].get("deletionTimestamp"):
                continue
            conditions = Conditions()
            ready = self._converge(ctx, dspa, conditions)
            previous = (dspa.get("status") or {}).get("conditions") or []
            status = {
                "components": _components(ctx, dspa),
                "conditions": conditions.written(previous, ready),
            }
            write_status(ctx, dspa, status)

    def _converge(
        self, ctx: Context, dspa: JsonObject, conditions: Conditions
    ) -> tuple[str, str, str] | None:
        """What one DSPO Reconcile does before its deferred status write; returns an
        overriding Ready (only for an unsupported version)."""
        spec = dspa.get("spec") or {}
        version = spec.get("dspVersion", "v2")
        if version != "v2":
            message = (
                f"unsupported DSP version {version} detected. Please manually remove this DSP "
                "resource and re-apply with a supported version field set"
            )
            for type_ in UNSUPPORTED:
                conditions.false(type_, "UnsupportedVersion", message)
            return ("False", "UnsupportedVersion", message)
        try:
            params = _params(ctx, dspa)
        except ParamsError:
            return None
        database_ok = self._database(ctx, dspa, params, conditions)
        store_ok = self._object_store(ctx, dspa, params, conditions)
        if not (database_ok and store_ok):
            return None
        if ((spec.get("apiServer") or {}).get("pipelineStore") or "database") == "kubernetes":
            conditions.false("WebhookReady", "ComponentDeploymentNotFound", "")
            return None
        conditions.false(
            "WebhookReady",
            "NotApplicable",
            "Webhook deployment not applicable for pipeline storage other than 'kubernetes'",
        )
        self._api_server(ctx, dspa, params)
        self._judge(ctx, dspa, f"ds-pipeline-{params.name}", "APIServerReady", conditions)
        for key, prefix, image, type_ in (
            ("persistenceAgent", "ds-pipeline-persistenceagent", "ds-pipeline-persistenceagent",
             "PersistenceAgentReady"),
            ("scheduledWorkflow", "ds-pipeline-scheduledworkflow",
             "ds-pipeline-scheduledworkflow", "ScheduledWorkflowReady"),
        ):  # fmt: skip
            if (spec.get(key) or {"deploy": True}).get("deploy", True):
                deployment = _deployment(params, f"{prefix}-{params.name}", [_container(image)])
                apply_owned(ctx, self.name, dspa, deployment)
            self._judge(ctx, dspa, f"{prefix}-{params.name}", type_, conditions)
        if (spec.get("workflowController") or {"deploy": True}).get("deploy", True):
            name = f"ds-pipeline-workflow-controller-{params.name}"
            controller = _container("ds-pipeline-workflow-controller", {"metrics": 9090})
            apply_owned(ctx, self.name, dspa, _deployment(params, name, [controller]))
            self._judge(ctx, dspa, name, "WorkflowControllerReady", conditions)
        else:
            conditions.false(
                "WorkflowControllerReady",
                "NotApplicable",
                "WorkflowController deployment disabled by the operator",
            )
        self._mlmd(ctx, dspa, params)
        # mlmd.go: the proxy's readiness is read from the scheduled workflow's Deployment
        self._judge(
            ctx, dspa, f"ds-pipeline-scheduledworkflow-{params.name}", "MLMDProxyReady", conditions
        )
        return None

    # -- prerequisites -------------------------------------------------------------------

    def _database(
        self, ctx: Context, dspa: JsonObject, params: _Params, conditions: Conditions
    ) -> bool:
        database = params.spec.get("database") or {"mariaDB": {"deploy": True}}
        if database.get("externalDB") is not None:
            host = (database["externalDB"] or {}).get("host", "?")
            conditions.false(
                "DatabaseAvailable",
                "FailingToDeploy",
                f"the sandbox runs no database for the external DB {host} "
                "(stand-in: external databases are not checked)",
            )
            return False
        name = f"mariadb-{params.name}"
        if (database.get("mariaDB") or {}).get("deploy", True):
            secret_name = f"ds-pipeline-db-{params.name}"
            if ctx.get("Secret", secret_name, params.namespace) is None:
                apply_owned(ctx, self.name, dspa, _db_secret(params, secret_name))
            container = _container("mariadb", {"mysql": 3306}, image="mariadb")
            apply_owned(ctx, self.name, dspa, _deployment(params, name, [container]))
            apply_owned(ctx, self.name, dspa, _service(params, name, name, [("mysql", 3306, 3306)]))
        if database.get("disableHealthCheck"):
            conditions.true("DatabaseAvailable", "Database connectivity successfully verified")
            return True
        deployment = ctx.get("Deployment.apps", name, params.namespace)
        available = _find(deployment, "Available")
        if available is not None and available.get("status") == "True":
            conditions.true("DatabaseAvailable", "Database connectivity successfully verified")
            return True
        conditions.false(
            "DatabaseAvailable",
            "FailingToDeploy",
            f"dial tcp {name}.{params.namespace}.svc.cluster.local:3306: connect: "
            "connection refused",
        )
        return False

    def _object_store(
        self, ctx: Context, dspa: JsonObject, params: _Params, conditions: Conditions
    ) -> bool:
        if params.store_problem is not None:
            conditions.false("ObjectStoreAvailable", "FailingToDeploy", params.store_problem)
            return False
        if (params.spec.get("objectStorage") or {}).get("disableHealthCheck"):
            conditions.true(
                "ObjectStoreAvailable", "Object Store connectivity successfully verified"
            )
            return True
        endpoint = f"{params.host}:{params.port}" if params.port else params.host
        scheme = "https" if params.secure else "http"
        local = ctx.in_cluster_url(f"{scheme}://{endpoint}/")
        key = (endpoint, local or "", params.bucket, params.access_key, params.secret_key)
        uid = dspa["metadata"]["uid"]
        cached = self._checks.get(uid)
        if cached is None or cached.key != key or time.monotonic() - cached.at > S3_RECHECK_S:
            if local is None:
                error: str | None = f"dial tcp: lookup {params.host}: no such host"
            else:
                parts = urlsplit(local)
                error = stat_probe_object(
                    parts.netloc, parts.scheme == "https", params.bucket,
                    params.access_key, params.secret_key,
                )  # fmt: skip
                if error is not None:  # the sandbox's loopback address is no name to show
                    error = error.replace(parts.netloc, endpoint)
            cached = _StoreCheck(key, time.monotonic(), error)
            self._checks[uid] = cached
        if cached.error is None:
            conditions.true(
                "ObjectStoreAvailable", "Object Store connectivity successfully verified"
            )
            return True
        conditions.false(
            "ObjectStoreAvailable",
            "FailingToDeploy",
            f"Could not connect to ({endpoint}), Error: {cached.error}",
        )
        return False

    # -- components ----------------------------------------------------------------------

    def _api_server(self, ctx: Context, dspa: JsonObject, params: _Params) -> None:
        api = params.spec.get("apiServer") or {"deploy": True}
        name = f"ds-pipeline-{params.name}"
        if not api.get("deploy", True):
            return
        oauth = bool(api.get("enableOauth", True))
        containers = [
            _container("ds-pipeline-api-server", {"http": 8888, "grpc": 8887},
                       probe=("/apis/v1beta1/healthz", "http"), image_override=api.get("image")),
        ]  # fmt: skip
        if oauth:
            containers.append(
                _container("oauth-proxy", {"oauth": 8443}, probe=("/oauth/healthz", "oauth"))
            )
        apply_owned(ctx, self.name, dspa, _deployment(params, name, containers))
        ports: list[tuple[str, int, int | str]] = [("oauth", 8443, "oauth")] if oauth else []
        ports += [("http", 8888, "http"), ("grpc", 8887, 8887)]
        apply_owned(ctx, self.name, dspa, _service(params, name, name, ports))
        apply_owned(ctx, self.name, dspa, _user_access_role(params, name))
        if ctx.served(ROUTE) is None:
            return
        if oauth:
            apply_owned(ctx, self.name, dspa, _route(params, name, name, name, "oauth"))
        else:
            delete_owned(ctx, ROUTE, name, params.namespace)

    def _mlmd(self, ctx: Context, dspa: JsonObject, params: _Params) -> None:
        d = params.name
        grpc = f"ds-pipeline-metadata-grpc-{d}"
        apply_owned(ctx, self.name, dspa, _service(params, grpc, grpc, [("grpc-api", 8080, 8080)]))
        envoy = f"ds-pipeline-metadata-envoy-{d}"
        containers = [
            _container(
                "container", {"md-envoy": 9090, "envoy-admin": 9901}, image="metadata-envoy"
            ),
            _container("oauth-proxy", {"oauth2-proxy": 8443}),
        ]
        deployment = _deployment(params, envoy, containers)
        deployment["spec"]["template"]["metadata"]["annotations"] = {
            "sidecar.istio.io/inject": "false"
        }
        apply_owned(ctx, self.name, dspa, deployment)
        container = _container("container", {"grpc-api": 8080}, image="metadata-grpc")
        apply_owned(ctx, self.name, dspa, _deployment(params, grpc, [container]))
        proxy = f"ds-pipeline-md-{d}"
        ports = [("md-envoy", 9090, 9090), ("oauth2-proxy", 8443, 8443)]
        apply_owned(ctx, self.name, dspa, _service(params, proxy, envoy, ports))
        mlmd = params.spec.get("mlmd") or {}
        if ctx.served(ROUTE) is not None and (mlmd.get("envoy") or {}).get("deployRoute", True):
            # metadata-envoy.route.yaml.tmpl names the envoy app's name as its Service
            apply_owned(ctx, self.name, dspa, _route(params, proxy, envoy, envoy, "oauth2-proxy"))

    def _judge(
        self, ctx: Context, dspa: JsonObject, component: str, type_: str, conditions: Conditions
    ) -> None:
        conditions.set(type_, *evaluate_condition(ctx, dspa["metadata"]["namespace"], component))


def evaluate_condition(ctx: Context, namespace: str, component: str) -> tuple[str, str, str]:
    """DSPO's evaluateCondition (dspipeline_controller.go): status, reason, message."""
    deployment = ctx.get("Deployment.apps", component, namespace)
    if deployment is None:
        return (
            "False",
            "ComponentDeploymentNotFound",
            f'Deployment for component "{component}" is missing - pre-requisite component may '
            "not yet be available.",
        )
    if (deployment.get("spec") or {}).get("replicas") == 0:
        return (
            "False",
            "MinimumReplicasAvailable",
            f'Deployment for component "{component}" is scaled down.',
        )
    available = _find(deployment, "Available")
    if available is not None and available.get("status") == "True":
        return (
            "True",
            "MinimumReplicasAvailable",
            f"Component [{component}] is minimally available.",
        )
    progressing = _find(deployment, "Progressing")
    if (
        progressing is not None
        and progressing.get("status") == "False"
        and progressing.get("reason") in ("ProgressDeadlineExceeded", "ReplicaSetCreateError")
    ):
        return (
            "False",
            "FailingToDeploy",
            f"Component [{component}] has failed to progress. Reason: "
            f"[{progressing.get('reason')}]. Message: [{progressing.get('message', '')}]",
        )
    failure = _find(deployment, "ReplicaFailure")
    if failure is not None and failure.get("status") == "True":
        return (
            "False",
            "FailingToDeploy",
            f"Component's replica [{component}] has failed to create. Reason: "
            f"[{failure.get('reason', '')}]. Message: [{failure.get('message', '')}]",
        )
    selector = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    pods = ctx.kube.get(
        f"/api/v1/namespaces/{namespace}/pods",
        params={"labelSelector": ",".join(f"{k}={v}" for k, v in sorted(selector.items()))},
    )["items"]
    failed = ""
    for pod in pods:
        status = pod.get("status") or {}
        if status.get("phase") == "Failed":
            failed += (
                f"Pod named [{pod['metadata']['name']}] that is associated with this component "
                f"[{component}] is in failed phase."
            )
        for container in status.get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") == "CrashLoopBackOff":
                return (
                    "False",
                    "FailingToDeploy",
                    f"Component [{component}] is in CrashLoopBackOff. Message from pod: "
                    f"[{waiting.get('message', '')}]",
                )
    if failed:
        return ("False", "FailingToDeploy", failed)
    return ("False", "Deploying", f"Component [{component}] is deploying.")


def stat_probe_object(
    netloc: str, secure: bool, bucket: str, access_key: str, secret_key: str
) -> str | None:
    """storage.go ``ConnectAndQueryObjStore``: None when the store answers as healthy (the
    object is found, or NoSuchKey/NoSuchBucket), else the error's message (never a key)."""
    http = urllib3.PoolManager(timeout=urllib3.Timeout(total=S3_TIMEOUT_S), retries=False)
    client = Minio(
        netloc, access_key=access_key, secret_key=secret_key, secure=secure, http_client=http
    )
    try:
        client.stat_object(bucket, PROBE_OBJECT)
    except S3Error as error:
        if error.code in ("NoSuchKey", "NoSuchBucket"):
            return None
        if error.code in MINIO_GO_TEXT and not (error.response and error.response.data):
            return MINIO_GO_TEXT[error.code]
        return error.message or error.code or "unknown S3 error"
    except (MinioException, urllib3.exceptions.HTTPError, OSError, ValueError) as error:
        return _transport_text(error, netloc)
    finally:
        http.clear()
    return None


def _transport_text(error: Exception, netloc: str) -> str:
    """A transport failure in the words of Go's net package, as minio-go reports it."""
    text = str(error)
    if "refused" in text.lower():
        return f"dial tcp {netloc}: connect: connection refused"
    if "timed out" in text.lower() or "timeout" in text.lower():
        return "context deadline exceeded"
    return f"{type(error).__name__}: {text}"


# -- params and documents ----------------------------------------------------------------


def _params(ctx: Context, dspa: JsonObject) -> _Params:
    meta = dspa["metadata"]
    params = _Params(meta["name"], meta["namespace"], dspa.get("spec") or {})
    storage = params.spec.get("objectStorage") or {}
    external = storage.get("externalStorage")
    if external is None:
        if storage.get("minio") is None:
            raise ParamsError(
                "either [spec.objectStorage.minio] or [spec.objectStorage.externalStorage] "
                "need to be specified in DSPA spec"
            )
        params.store_problem = (
            "the sandbox runs no DSPA-managed Minio (stand-in: spec.objectStorage.minio is not "
            "deployed)"
        )
        return params
    params.host = external.get("host") or ""
    params.port = str(external.get("port") or "")
    params.bucket = external.get("bucket") or ""
    scheme = external.get("scheme") or "https"
    secure = external.get("secure")
    params.secure = bool(secure) if secure is not None else scheme == "https"
    reference = external.get("s3CredentialsSecret") or {}
    secret = ctx.get("Secret", reference.get("secretName") or "", params.namespace)
    params.access_key = secret_value(secret or {}, reference.get("accessKey") or "") or ""
    params.secret_key = secret_value(secret or {}, reference.get("secretKey") or "") or ""
    if not params.access_key or not params.secret_key:
        raise ParamsError(
            f"object storage password from secret [{reference.get('secretName')}] for keys "
            f"[{reference.get('accessKey')}, {reference.get('secretKey')}] was not successfully "
            "retrieved, ensure that the secret with this key exist"
        )
    if not params.host:
        params.store_problem = "Could not determine Object Storage Endpoint"
    return params


def _labels(params: _Params, app: str) -> dict[str, str]:
    return {"app": app, "component": COMPONENT, "dspa": params.name}


def _container(
    name: str,
    ports: dict[str, int] | None = None,
    probe: tuple[str, str] | None = None,
    image: str | None = None,
    image_override: str | None = None,
) -> JsonObject:
    made: JsonObject = {"name": name, "image": image_override or IMAGES[image or name]}
    if ports:
        made["ports"] = [
            {"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports.items()
        ]
    if probe:
        path, port = probe
        check = {"httpGet": {"path": path, "port": port, "scheme": "HTTP"}}
        made["livenessProbe"] = {**check, "initialDelaySeconds": 15, "periodSeconds": 5}
        made["readinessProbe"] = {**check, "initialDelaySeconds": 3, "periodSeconds": 5}
    return made


def _deployment(params: _Params, name: str, containers: list[JsonObject]) -> JsonObject:
    labels = _labels(params, name)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": params.namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": containers}},
        },
    }


def _service(
    params: _Params, name: str, app: str, ports: Sequence[tuple[str, int, int | str]]
) -> JsonObject:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": params.namespace,
            "labels": {"app": app, "component": COMPONENT},
        },
        "spec": {
            "selector": {"app": app, "component": COMPONENT},
            "ports": [
                {"name": n, "port": p, "protocol": "TCP", "targetPort": t} for n, p, t in ports
            ],
        },
    }


def _route(params: _Params, name: str, app: str, service: str, target_port: str) -> JsonObject:
    return {
        "apiVersion": "route.openshift.io/v1",
        "kind": "Route",
        "metadata": {
            "name": name,
            "namespace": params.namespace,
            "labels": {"app": app, "component": COMPONENT},
            "annotations": {"kubernetes.io/tls-acme": "true"},
        },
        "spec": {
            "to": {"kind": "Service", "name": service, "weight": 100},
            "port": {"targetPort": target_port},
            "tls": {"termination": "reencrypt", "insecureEdgeTerminationPolicy": "Redirect"},
        },
    }


def _user_access_role(params: _Params, api_server: str) -> JsonObject:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {
            "name": f"ds-pipeline-user-access-{params.name}",
            "namespace": params.namespace,
            "labels": {"app": api_server, "component": COMPONENT},
        },
        "rules": [{"apiGroups": ["route.openshift.io"], "resources": ["routes"], "verbs": ["get"]}],
    }


def _db_secret(params: _Params, name: str) -> JsonObject:
    password = base64.b64encode(secrets.token_urlsafe(12).encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": params.namespace,
            "labels": {"app": f"mariadb-{params.name}", "component": COMPONENT},
        },
        "type": "Opaque",
        "data": {"password": password},
    }


def _components(ctx: Context, dspa: JsonObject) -> JsonObject:
    """GetComponents: url and externalUrl only when both the Service and the Route exist."""
    meta = dspa["metadata"]
    found: JsonObject = {}
    for key, name in (("mlmdProxy", f"ds-pipeline-md-{meta['name']}"),
                      ("apiServer", f"ds-pipeline-{meta['name']}")):  # fmt: skip
        service = ctx.get("Service", name, meta["namespace"])
        route = ctx.get(ROUTE, name, meta["namespace"])
        detail: JsonObject = {}
        if service is not None and route is not None and (route.get("spec") or {}).get("host"):
            ports = [str(p["port"]) for p in (service.get("spec") or {}).get("ports") or []]
            secured = next((p for p in ports if p in ("8443", "443")), None)
            port, scheme = (secured, "https") if secured else ((ports or [""])[-1], "http")
            detail = {
                "url": f"{scheme}://{name}.{meta['namespace']}.svc.cluster.local:{port}",
                "externalUrl": ("https://" if route["spec"].get("tls") else "http://")
                + route["spec"]["host"],
            }
        found[key] = detail
    return found


def _find(obj: JsonObject | None, type_: str) -> JsonObject | None:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == type_), None)
