"""A small Kubernetes REST client over httpx, built from one target's kubeconfig context.

Why not the generated client: stagecheck needs any kind (CRDs included) through discovery,
raw watches it can close promptly, and one place that refuses writes. How the client reaches
its server (TLS, proxy, token, exec plugin, client certificate) comes from ``kube.kubeconfig``,
the one reader of kubeconfigs, and serves requests, watches and port-forward tunnels alike.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Generator, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import httpx

from stagecheck.config import Target
from stagecheck.errors import (
    Conflict,
    Forbidden,
    Invalid,
    KubeApiError,
    NotFound,
    ServerNotTrusted,
    StagecheckError,
    TargetUnreachable,
    Unauthorized,
    WriteRefused,
)
from stagecheck.kube.credentials import TokenSource
from stagecheck.kube.kubeconfig import ClusterAccess, load_access, sandbox_not_running
from stagecheck.kube.portforward import PortForward, tunnel_configuration
from stagecheck.kube.tls import PemFiles, ssl_context, untrusted, untrusted_message
from stagecheck.redaction import remember_secret_object

JsonObject = dict[str, Any]


def secret_value(secret: JsonObject, key: str) -> str | None:
    """The decoded value of a Secret's ``data`` key; None when there is no such key or its
    value is not base64 of UTF-8 text."""
    value = (secret.get("data") or {}).get(key)
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None


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
                    remember_secret_object(event.get("object"))
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


class _BearerAuth(httpx.Auth):
    """Adds the access's bearer token to each request; after a 401, asks its source for a new
    one (a rotated file, an exec plugin run again) and sends the request once more."""

    def __init__(self, source: TokenSource) -> None:
        self._source = source

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._source.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and self._source.renew(token):
            request.headers["Authorization"] = f"Bearer {self._source.token()}"
            yield request


class Kube:
    """REST access to one cluster. Writes go through ``_write``, which honours read-only."""

    def __init__(
        self,
        http: httpx.Client,
        target: Target,
        access: ClusterAccess | None = None,
        files: PemFiles | None = None,
    ) -> None:
        self._http = http
        self.target = target
        self.access = access  # how this client reaches its server (port-forward tunnels too)
        self._files = files
        self._version: JsonObject | None = None

    def bearer_token(self) -> str | None:
        """The kubeconfig context's bearer token (after `oc login`), if it uses one."""
        if self.access is None or self.access.token is None:
            return None
        return self.access.token.token()

    def port_forward(self, namespace: str, pod: str, port: int) -> PortForward:
        """A local listener tunnelled to ``pod:port`` (see kube.portforward); close it after."""
        if self.access is None or self._files is None:
            raise StagecheckError("this client was built without its kubeconfig: no port-forward")
        agent = self._http.headers.get("User-Agent", "stagecheck")
        configuration = tunnel_configuration(self.access, self._files)
        return PortForward(configuration, namespace, pod, port, agent)

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
        """The server's /version, read once per client (connect reads it first)."""
        if self._version is None:
            self._version = self.get("/version")
        return self._version

    def watch(self, path: str, params: Mapping[str, str], timeout_s: float) -> WatchStream:
        """Open a watch; iterate it for events, ``abort()`` it from another thread to stop."""
        query = {**params, "watch": "true", "timeoutSeconds": str(max(1, int(timeout_s + 0.999)))}
        timeout = httpx.Timeout(CONNECT_TIMEOUT_S, read=timeout_s + 5)
        request = self._http.build_request("GET", path, params=query, timeout=timeout)
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as error:
            raise self._transport_error(f"a watch of {path}", error) from None
        if response.status_code >= 400:
            response.read()
            response.close()
            raise self._error("GET", path, response)
        return WatchStream(response)

    def request_token(self, namespace: str, account: str, seconds: int) -> str:
        """A short-lived token of a ServiceAccount (TokenRequest). It is a POST, but it creates
        no object, so a read-only run may ask for one (RBAC still decides)."""
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": seconds},
        }
        issued = self._send(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
            content=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        return str(issued["status"]["token"])

    # -- writes ------------------------------------------------------------------------------
    def create(self, path: str, body: JsonObject, dry_run: bool = False) -> JsonObject:
        """POST; with ``dry_run`` the server admits and answers but stores nothing."""
        params = {"dryRun": "All"} if dry_run else None
        return self._write("POST", path, body, params=params)

    def replace(self, path: str, body: JsonObject) -> JsonObject:
        return self._write("PUT", path, body)

    def patch(
        self, path: str, body: JsonObject, patch_type: str = "application/merge-patch+json"
    ) -> JsonObject:
        return self._write("PATCH", path, body, content_type=patch_type)

    def apply(
        self,
        path: str,
        body: JsonObject,
        field_manager: str = "stagecheck",
        dry_run: bool = False,
        force: bool = False,
    ) -> JsonObject:
        """Server-side apply: create or update the fields this manager owns. A field another
        manager (GitOps, an operator) owns with another value is a Conflict unless ``force``."""
        params = {"fieldManager": field_manager, "force": str(force).lower()}
        if dry_run:
            params["dryRun"] = "All"
        return self._write("PATCH", path, body, "application/apply-patch+yaml", params)

    def delete(
        self, path: str, grace_period_s: int | None = None, uid: str | None = None
    ) -> JsonObject | None:
        """DELETE; with ``uid``, only that object (not one made since under its name)."""
        params = None if grace_period_s is None else {"gracePeriodSeconds": str(grace_period_s)}
        body = None if uid is None else {"kind": "DeleteOptions", "apiVersion": "v1",
                                         "preconditions": {"uid": uid}}  # fmt: skip
        try:
            return self._write("DELETE", path, body, params=params)
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
        answer: JsonObject = response.json() if response.content else {}
        remember_secret_object(answer)  # its values are cut out of everything shown
        return answer

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
            raise self._transport_error(f"{method} {path}", error) from None
        if response.status_code >= 400:
            raise self._error(method, path, response)
        return response

    def _transport_error(self, what: str, error: httpx.TransportError) -> TargetUnreachable:
        failure = untrusted(error)
        if failure is not None and self.access is not None:
            return ServerNotTrusted(untrusted_message(self.access, failure))
        return TargetUnreachable(f"{self.target.describe()} did not answer {what}: {error}")

    def _error(self, method: str, path: str, response: httpx.Response) -> KubeApiError:
        causes: tuple[tuple[str, str], ...] = ()
        try:
            status = response.json()
            reason, message = status.get("reason", ""), status.get("message", response.text)
            details = status.get("details") or {}
            causes = tuple(
                (str(c.get("field", "")), str(c.get("message", "")))
                for c in details.get("causes") or []
            )
        except (ValueError, AttributeError):
            reason, message = response.reason_phrase, response.text[:500]
        args = (method, path, response.status_code, reason, message)
        who = self.access.where if self.access else self.target.describe()
        if response.status_code == 401:
            used = self.access.describe_credentials() if self.access else "its credentials"
            return Unauthorized(
                *args,
                explanation=f"the API server did not accept {used} ({who}; HTTP 401 on "
                f"{method} {path}): log in again (oc login), or name another context",
            )
        if response.status_code == 403:
            # RBAC says 'User "u" cannot VERB resource ...'; an admission plugin says otherwise.
            advice = (
                ": the credentials were accepted but that user lacks the permission; grant it "
                "a role that allows this, or run as another user"
                if " cannot " in message
                else ""
            )
            return Forbidden(
                *args, explanation=f"{message} (HTTP 403 on {method} {path}, {who}){advice}"
            )
        cls = {404: NotFound, 409: Conflict, 422: Invalid}.get(response.status_code, KubeApiError)
        return cls(*args, causes=causes)

    def close(self) -> None:
        self._http.close()
        if self._files is not None:
            self._files.close()


def connect(target: Target, run_id: str | None = None, access: ClusterAccess | None = None) -> Kube:
    """Build a client for the target's explicit context and prove the API server answers.

    ``access`` is the target's kubeconfig as read when the run started (read now if not given).
    The run id goes into the User-Agent, so the API server's audit log tells runs apart."""
    access = access or load_access(target)
    files = PemFiles(access)
    try:
        http = httpx.Client(
            base_url=access.server,
            verify=ssl_context(access, files),
            auth=_BearerAuth(access.token) if access.token else None,
            proxy=access.proxy_url,
            timeout=httpx.Timeout(REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            headers={"User-Agent": f"stagecheck run/{run_id}" if run_id else "stagecheck"},
            event_hooks={"request": [_server_name(access.tls_server_name)]}
            if access.tls_server_name
            else None,
            trust_env=False,
        )
    except BaseException:
        files.close()
        raise
    kube = Kube(http, target, access, files)
    try:
        kube.version()
    except ServerNotTrusted:
        kube.close()
        raise
    except TargetUnreachable:
        kube.close()
        raise TargetUnreachable(_unreachable_hint(target, access.server)) from None
    except BaseException:
        kube.close()
        raise
    return kube


def _server_name(name: str) -> Any:
    """A request hook that checks the server's certificate for ``name`` (tls-server-name)."""

    def hook(request: httpx.Request) -> None:
        request.extensions["sni_hostname"] = name

    return hook


def _unreachable_hint(target: Target, host: str | None) -> str:
    if target.type == "sandbox":
        return sandbox_not_running(host)
    return (
        f"{target.describe()} is unreachable at {host}: check the cluster is up and the "
        "context is right, or choose another target with --target"
    )
