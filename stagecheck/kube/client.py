"""A small Kubernetes REST client over httpx, built from one target's kubeconfig context.

Why not the generated client: stagecheck needs any kind (CRDs included) through discovery,
raw watches it can close promptly, and one place that refuses writes. Credentials come from
the kubeconfig loader of the ``kubernetes`` package (exec plugins, tokens, client certs).
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Generator, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import httpx
from kubernetes.client import Configuration
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.kube_config import (
    list_kube_config_contexts,
    load_kube_config,
)

from stagecheck.config import Target
from stagecheck.errors import (
    ConfigError,
    KubeApiError,
    NotFound,
    StagecheckError,
    TargetUnreachable,
    WriteRefused,
)
from stagecheck.kube.portforward import PortForward

JsonObject = dict[str, Any]
CONNECT_TIMEOUT_S = 3.0
REQUEST_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK, ERROR
    object: JsonObject


class WatchStream:
    """One open watch response. ``abort`` unblocks a reader in another thread at once."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    def __iter__(self) -> Iterator[WatchEvent]:
        try:
            for line in self._response.iter_lines():
                if line:
                    event = json.loads(line)
                    yield WatchEvent(type=event["type"], object=event["object"])
        except (httpx.TransportError, httpx.StreamError, ValueError):
            return  # aborted, or the server ended the watch: the caller decides what next
        finally:
            self._response.close()

    def abort(self) -> None:
        stream = self._response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _KubeconfigAuth(httpx.Auth):
    """Adds the bearer token per request, refreshing it through the kubeconfig's hook."""

    def __init__(self, configuration: Any) -> None:
        self._configuration = configuration
        self._lock = threading.Lock()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        with self._lock:
            token = self._configuration.get_api_key_with_prefix("authorization")
        if token:
            request.headers["Authorization"] = token
        yield request


class Kube:
    """REST access to one cluster. Writes go through ``_write``, which honours read-only."""

    def __init__(self, http: httpx.Client, target: Target, configuration: Any = None) -> None:
        self._http = http
        self.target = target
        self._configuration = configuration  # the kubeconfig's, for port-forward tunnels

    def bearer_token(self) -> str | None:
        """The kubeconfig context's bearer token (after `oc login`), if it uses one."""
        if self._configuration is None:
            return None
        header = self._configuration.get_api_key_with_prefix("authorization")
        return str(header).removeprefix("Bearer ").strip() or None if header else None

    def port_forward(self, namespace: str, pod: str, port: int) -> PortForward:
        """A local listener tunnelled to ``pod:port`` (see kube.portforward); close it after."""
        if self._configuration is None:
            raise StagecheckError("this client was built without its kubeconfig: no port-forward")
        agent = self._http.headers.get("User-Agent", "stagecheck")
        return PortForward(self._configuration, namespace, pod, port, agent)

    # -- reads -------------------------------------------------------------------------------
    def get(
        self, path: str, params: Mapping[str, str] | None = None, accept: str | None = None
    ) -> JsonObject:
        return self._send(
            "GET", path, params=params, headers={"Accept": accept} if accept else None
        )

    def get_text(self, path: str, params: Mapping[str, str] | None = None) -> str:
        """A plain-text read, such as a pod's log."""
        return self._request("GET", path, params=params).text

    def get_or_none(self, path: str) -> JsonObject | None:
        try:
            return self.get(path)
        except NotFound:
            return None

    def ready(self) -> bool:
        """Whether the API server reports itself ready (all its start-up hooks done)."""
        try:
            return self._http.get("/readyz").text.strip() == "ok"
        except httpx.TransportError:
            return False

    def version(self) -> JsonObject:
        return self.get("/version")

    def watch(self, path: str, params: Mapping[str, str], timeout_s: float) -> WatchStream:
        """Open a watch; iterate it for events, ``abort()`` it from another thread to stop."""
        query = {**params, "watch": "true", "timeoutSeconds": str(max(1, int(timeout_s + 0.999)))}
        timeout = httpx.Timeout(CONNECT_TIMEOUT_S, read=timeout_s + 5)
        request = self._http.build_request("GET", path, params=query, timeout=timeout)
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as error:
            raise TargetUnreachable(
                f"{self.target.describe()} did not answer a watch of {path}: {error}"
            ) from None
        if response.status_code >= 400:
            response.read()
            response.close()
            raise self._error("GET", path, response)
        return WatchStream(response)

    # -- writes ------------------------------------------------------------------------------
    def create(self, path: str, body: JsonObject) -> JsonObject:
        return self._write("POST", path, body)

    def replace(self, path: str, body: JsonObject) -> JsonObject:
        return self._write("PUT", path, body)

    def patch(
        self, path: str, body: JsonObject, patch_type: str = "application/merge-patch+json"
    ) -> JsonObject:
        return self._write("PATCH", path, body, content_type=patch_type)

    def apply(
        self, path: str, body: JsonObject, field_manager: str = "stagecheck", dry_run: bool = False
    ) -> JsonObject:
        """Server-side apply: create or update the fields this manager owns."""
        params = {"fieldManager": field_manager, "force": "true"}
        if dry_run:
            params["dryRun"] = "All"
        return self._write("PATCH", path, body, "application/apply-patch+yaml", params)

    def delete(self, path: str) -> JsonObject | None:
        try:
            return self._write("DELETE", path, None)
        except NotFound:
            return None

    def _write(
        self,
        method: str,
        path: str,
        body: JsonObject | None,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
    ) -> JsonObject:
        if not self.target.allow_writes:
            raise WriteRefused(
                f"refused {method} {path}: {self.target.describe()} is read-only in this run; "
                "start the run with --allow-writes to let it change the cluster"
            )
        content = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type}
        return self._send(method, path, params=params, content=content, headers=headers)

    # -- transport ---------------------------------------------------------------------------
    def _send(self, method: str, path: str, **options: Any) -> JsonObject:
        """A request whose answer is JSON (``options`` as for ``_request``)."""
        response = self._request(method, path, **options)
        return response.json() if response.content else {}

    def _request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        try:
            response = self._http.request(
                method, path, params=params, content=content, headers=headers
            )
        except httpx.TransportError as error:
            raise TargetUnreachable(
                f"{self.target.describe()} did not answer {method} {path}: {error}"
            ) from None
        if response.status_code >= 400:
            raise self._error(method, path, response)
        return response

    @staticmethod
    def _error(method: str, path: str, response: httpx.Response) -> KubeApiError:
        try:
            status = response.json()
            reason, message = status.get("reason", ""), status.get("message", response.text)
        except ValueError:
            reason, message = response.reason_phrase, response.text[:500]
        cls = NotFound if response.status_code == 404 else KubeApiError
        return cls(method, path, response.status_code, reason, message)

    def close(self) -> None:
        self._http.close()


def connect(target: Target, run_id: str | None = None) -> Kube:
    """Build a client for the target's explicit context and prove the API server answers.

    The run id goes into the User-Agent, so the API server's audit log tells runs apart."""
    configuration = _load_configuration(target)
    http = httpx.Client(
        base_url=configuration.host,
        verify=_ssl_context(configuration),
        auth=_KubeconfigAuth(configuration),
        timeout=httpx.Timeout(REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
        headers={"User-Agent": f"stagecheck run/{run_id}" if run_id else "stagecheck"},
        trust_env=False,
    )
    kube = Kube(http, target, configuration)
    try:
        kube.version()
    except TargetUnreachable:
        kube.close()
        raise TargetUnreachable(_unreachable_hint(target, configuration.host)) from None
    except KubeApiError as error:
        kube.close()
        if error.status in (401, 403):
            raise ConfigError(
                f"{target.describe()} rejected the credentials of its kubeconfig "
                f"(HTTP {error.status} {error.reason}); log in again or name another context"
            ) from None
        raise
    return kube


def _load_configuration(target: Target) -> Any:
    if not target.kubeconfig.exists():
        if target.type == "sandbox":
            raise TargetUnreachable(_unreachable_hint(target, None))
        raise ConfigError(f"{target.describe()}: kubeconfig {target.kubeconfig} does not exist")
    if target.context is not None:
        try:
            contexts, _current = list_kube_config_contexts(str(target.kubeconfig))  # type: ignore[no-untyped-call]
        except ConfigException as error:
            raise ConfigError(f"kubeconfig {target.kubeconfig} is not usable: {error}") from None
        names = [c["name"] for c in contexts]
        if target.context not in names:
            raise ConfigError(
                f"{target.describe()}: context {target.context!r} is not in {target.kubeconfig} "
                f"(contexts there: {', '.join(names) or 'none'})"
            )
    configuration = type.__call__(Configuration)
    try:
        load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(target.kubeconfig),
            context=target.context,
            client_configuration=configuration,
            persist_config=False,
        )
    except (ConfigException, ValueError, OSError) as error:
        raise ConfigError(f"{target.describe()}: kubeconfig is not usable: {error}") from None
    return configuration


def _ssl_context(configuration: Any) -> ssl.SSLContext | bool:
    if not configuration.host.startswith("https"):
        return False
    if not configuration.verify_ssl:
        return False
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    return context


def _unreachable_hint(target: Target, host: str | None) -> str:
    if target.type == "sandbox":
        return (
            "the sandbox control plane is not running"
            + (f" (nothing answers at {host})" if host else "")
            + ": start it with `scripts/sandbox up` (or `scripts/control-plane up` for an empty "
            "one), or name another target with --target (kind, cluster:CONTEXT, or one defined "
            "in stagecheck.toml)"
        )
    return (
        f"{target.describe()} is unreachable at {host}: check the cluster is up and the "
        "context is right, or choose another target with --target"
    )
