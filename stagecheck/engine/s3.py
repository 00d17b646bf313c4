"""Object storage the stage depends on: the pipelines' artifact bucket, over the S3 API, with
the credentials the cluster holds for it. Key values are read from the cluster's Secret and
never appear in any message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from stagecheck.config import Target
from stagecheck.engine.endpoints import Endpoint, Endpoints
from stagecheck.engine.kubernetes import Cluster
from stagecheck.engine.outcome import StepFailure, fail
from stagecheck.errors import (
    CredentialError,
    EnvironmentProblem,
    KubeApiError,
    SpecificationError,
    StateError,
)
from stagecheck.kube.client import secret_value

if TYPE_CHECKING:
    from minio import Minio
    from minio.error import S3Error

# minio and urllib3 are imported where first used: a run without S3 steps starts without them.

AUTH_ERRORS = frozenset(
    {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "InvalidToken"}
)


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str = ""  # never printed
    origin: str = ""  # where they came from, for messages: "Secret ns/name"

    def __repr__(self) -> str:
        return f"Credentials(from {self.origin})"


def credentials_from_secret(
    cluster: Cluster, namespace: str, name: str, access_field: str, secret_field: str
) -> Credentials:
    origin = f"Secret {namespace}/{name}"
    try:
        secret = cluster.kube.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
    except KubeApiError as error:
        raise CredentialError(f"the S3 credentials cannot be read from {origin}: {error}") from None
    data = secret.get("data") or {}
    missing = [f for f in (access_field, secret_field) if f not in data]
    if missing:
        raise StateError(f"{origin} has no key {', '.join(missing)} (keys: {', '.join(data)})")
    access, secret_key = secret_value(secret, access_field), secret_value(secret, secret_field)
    if access is None or secret_key is None:
        raise StateError(f"{origin}: {access_field} or {secret_field} is not base64 of text")
    return Credentials(access, secret_key, origin)


def client(endpoint: Endpoint, credentials: Credentials) -> Minio:
    from urllib.request import getproxies, proxy_bypass

    import urllib3
    from minio import Minio

    parts = urlsplit(endpoint.url)
    options: dict[str, Any] = {
        "timeout": urllib3.Timeout(connect=5, read=30),
        "retries": urllib3.Retry(total=0),
        "cert_reqs": "CERT_REQUIRED" if endpoint.verify_tls else "CERT_NONE",
    }
    if not isinstance(tls := endpoint.tls(), bool):
        options["ssl_context"] = tls
    # The environment's proxy (http_proxy, https_proxy, no_proxy), as every other client of a
    # run honours it (httpx, gRPC); urllib3 alone would ignore it.
    proxy = None if proxy_bypass(parts.hostname or "") else getproxies().get(parts.scheme)
    http = urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
    return Minio(
        parts.netloc,
        access_key=credentials.access_key,
        secret_key=credentials.secret_key,
        secure=parts.scheme == "https",
        http_client=http,
    )


def bucket_reachable(endpoint: Endpoint, credentials: Credentials, bucket: str) -> None:
    import urllib3
    from minio.error import S3Error

    subject = f"S3 bucket {bucket} at {endpoint.url}"
    expected = f"the bucket to exist and accept the credentials of {credentials.origin}"
    try:
        exists = client(endpoint, credentials).bucket_exists(bucket)
    except S3Error as error:
        raise _failure(subject, expected, error, credentials) from None
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise fail(subject, expected, f"{endpoint.describe()} does not answer: {error}") from None
    if not exists:
        raise fail(subject, expected, "no such bucket", "create it (deploy.sh's first step)")


def ensure_bucket(endpoint: Endpoint, credentials: Credentials, bucket: str) -> bool:
    """Create the bucket if missing; True when this call created it."""
    from minio.error import S3Error

    subject = f"S3 bucket {bucket} at {endpoint.url}"
    s3 = client(endpoint, credentials)
    try:
        if s3.bucket_exists(bucket):
            return False
        s3.make_bucket(bucket)
    except S3Error as error:
        raise _failure(subject, "the bucket to exist or be created", error, credentials) from None
    return True


def remove_bucket(endpoint: Endpoint, credentials: Credentials, bucket: str) -> None:
    from minio.error import S3Error

    try:
        client(endpoint, credentials).remove_bucket(bucket)
    except S3Error as error:  # e.g. BucketNotEmpty: something else wrote to it; keep it
        raise EnvironmentProblem(f"S3 bucket {bucket} was kept: {error.code}") from None


def _failure(subject: str, expected: str, error: S3Error, credentials: Credentials) -> StepFailure:
    if error.code in AUTH_ERRORS:
        return fail(
            subject,
            expected,
            f"authentication failed: {error.code}",
            f"the keys in {credentials.origin} are not accepted by the object store; "
            "fix the Secret or the store's identity",
        )
    return fail(subject, expected, f"{error.code}: {error.message}")


def dspa_storage(cluster: Cluster, name: str, namespace: str) -> dict[str, Any]:
    """The DSPA's external object storage: host, port, scheme, bucket and its Secret's keys."""
    dspa = cluster.discovery.resolve(
        "DataSciencePipelinesApplication.datasciencepipelinesapplications.opendatahub.io"
    )
    found = cluster.kube.get(dspa.object_path(name, namespace))
    storage = found.get("spec", {}).get("objectStorage", {}).get("externalStorage")
    if not storage:
        raise SpecificationError(
            f"DataSciencePipelinesApplication {namespace}/{name} has no "
            "spec.objectStorage.externalStorage (a DSPA-managed MinIO is not checked here)"
        )
    return dict(storage)


def dspa_bucket_reachable(
    cluster: Cluster, target: Target, endpoints: Endpoints, name: str
) -> None:
    """The DSPA's artifact bucket answers over S3 with the credentials of the DSPA's Secret."""
    storage = dspa_storage(cluster, name, target.namespace)
    keys = storage.get("s3CredentialsSecret") or {}
    credentials = credentials_from_secret(
        cluster,
        target.namespace,
        str(keys.get("secretName")),
        str(keys.get("accessKey", "AWS_ACCESS_KEY_ID")),
        str(keys.get("secretKey", "AWS_SECRET_ACCESS_KEY")),
    )
    scheme = storage.get("scheme", "https")
    port = f":{storage['port']}" if storage.get("port") else ""
    url = f"{scheme}://{storage.get('host')}{port}"
    endpoint = endpoints.resolve("s3", (url, f"DSPA {name} spec.objectStorage"))
    bucket_reachable(endpoint, credentials, str(storage.get("bucket")))
