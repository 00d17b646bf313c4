"""Port-forward to a pod through the API server, as ``kubectl port-forward`` does.

A ``PortForward`` listens on 127.0.0.1 (a port chosen by the system) and tunnels every
connection it accepts to one port of one pod over the ``pods/portforward`` subresource (the
WebSocket protocol of the ``kubernetes`` package). Each connection gets its own tunnel, so
HTTP and gRPC clients work unchanged. On a kind cluster the kubelet forwards into the pod; on the
sandbox kwok does, to the local server its PortForward resources name.

A port-forward changes nothing in the cluster, so it is allowed on read-only targets. A tunnel
authenticates as the run's API requests do: ``tunnel_configuration`` hands the same access (TLS,
client certificate, token source, proxy, server name) to the ``kubernetes`` package.
"""

from __future__ import annotations

import select
import socket
import threading
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from stagecheck.errors import PortForwardError
from stagecheck.kube.kubeconfig import ClusterAccess
from stagecheck.kube.tls import PemFiles

if TYPE_CHECKING:
    from kubernetes.client import Configuration

# The kubernetes package (its models alone take most of a second to import) is loaded by the
# first tunnel, not by every run.

OPEN_CHECK_S = 1.0  # how long a probe tunnel waits for the far end to report an error
CHUNK = 64 * 1024


# Where kubernetes 37.x's Configuration holds the bearer token it sends (its auth_settings);
# tests/kube/test_auth.py fails loudly if a release moves it.
TOKEN_KEY = "BearerToken"


def tunnel_configuration(access: ClusterAccess, files: PemFiles) -> Configuration:
    """The ``kubernetes`` package's view of ``access``, for its WebSocket client."""
    from kubernetes.client import Configuration

    configuration = Configuration(host=access.server)
    configuration.verify_ssl = access.verifies_tls
    configuration.ssl_ca_cert = files.ca
    configuration.cert_file, configuration.key_file = files.cert, files.key
    configuration.tls_server_name = access.tls_server_name
    configuration.proxy = access.proxy_url
    source = access.token
    if source is not None:

        def fresh_token(config: Configuration) -> None:  # asked before every tunnel opens
            config.api_key = {TOKEN_KEY: f"Bearer {source.token()}"}

        configuration.refresh_api_key_hook = fresh_token  # type: ignore[assignment]
        fresh_token(configuration)
    return configuration


class PortForward:
    """A local listener whose connections reach ``namespace/pod:port``."""

    def __init__(
        self, configuration: Configuration, namespace: str, pod: str, port: int, user_agent: str
    ) -> None:
        self.namespace, self.pod, self.port = namespace, pod, port
        from kubernetes.client import ApiClient, CoreV1Api

        client = ApiClient(configuration)
        client.user_agent = user_agent  # the run's, so the audit log tells runs apart
        self._api = CoreV1Api(client)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.local_port: int = self._listener.getsockname()[1]
        self.errors: list[str] = []  # what the far end said when a tunnel failed
        self._closed = threading.Event()
        self._accepting = threading.Thread(
            target=self._accept, name=f"port-forward {self.describe()}", daemon=True
        )
        self._accepting.start()

    def describe(self) -> str:
        return f"pod {self.namespace}/{self.pod} port {self.port}"

    def check(self) -> None:
        """Open one tunnel and wait briefly for an error from the node: a missing forward rule,
        a closed port in the pod, a pod that is gone. Raises PortForwardError with its words."""
        tunnel = self._open()
        remote = tunnel.socket(self.port)
        try:
            readable, _, _ = select.select([remote], [], [], OPEN_CHECK_S)
            if readable and not remote.recv(1, socket.MSG_PEEK):
                error = tunnel.error(self.port) or "the tunnel closed at once"
                raise PortForwardError(f"port-forward to {self.describe()} failed: {error}")
        finally:
            _drain_and_close(remote)  # a server may greet first (HTTP/2 does)
            tunnel.close()

    def close(self) -> None:
        self._closed.set()
        with suppress(OSError):
            self._listener.close()

    # -- internals ------------------------------------------------------------------------

    def _open(self) -> Any:
        from kubernetes.stream import portforward

        try:
            return portforward(
                self._api.connect_get_namespaced_pod_portforward,
                self.pod,
                self.namespace,
                ports=str(self.port),
                _request_timeout=10,
            )
        except Exception as error:  # the websocket client raises ApiException, OSError, ...
            status = getattr(error, "status", None)
            reason = getattr(error, "reason", None) or error
            raise PortForwardError(
                f"the API server refused a port-forward to {self.describe()}"
                + (f" (HTTP {status})" if status else "")
                + f": {reason}"
            ) from None

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            tunnel = self._open()
        except PortForwardError as error:
            self.errors.append(str(error))
            client.close()
            return
        remote = tunnel.socket(self.port)
        try:
            _pump(client, remote)
        finally:
            if failure := tunnel.error(self.port):
                self.errors.append(f"port-forward to {self.describe()}: {failure}")
            _drain_and_close(remote)
            tunnel.close()
            client.close()


def _drain_and_close(remote: Any) -> None:
    """End the tunnel's local half gently: say EOF, then read what is still in flight. Closing
    it with unread bytes would reset the socket under the client library's proxy thread."""
    with suppress(OSError):
        remote.shutdown(socket.SHUT_WR)
        remote.settimeout(1.0)
        while remote.recv(CHUNK):
            pass
    remote.close()


def _pump(a: Any, b: Any) -> None:
    """Copy bytes both ways until either side closes."""
    peers = {a: b, b: a}
    while True:
        readable, _, _ = select.select(list(peers), [], [])
        for sock in readable:
            try:
                data = sock.recv(CHUNK)
            except OSError:
                return
            if not data:
                return
            try:
                peers[sock].sendall(data)
            except OSError:
                return
