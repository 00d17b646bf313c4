"""TLS to the API server: the trust and client certificate a kubeconfig names, and what to say
when the server's certificate is not trusted.

Python's ssl module and the WebSocket client of port-forward tunnels load certificates from
paths only, so PEM data from a kubeconfig lives in anonymous memory files (``memfd``) that
exist only while the client does: key material is never written to disk.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from stagecheck.errors import KubeconfigError
from stagecheck.kube.kubeconfig import ClusterAccess, Pem

_SHORT = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU"}


class PemFiles:
    """Paths for the CA, client certificate and key of one access, valid until ``close``."""

    def __init__(self, access: ClusterAccess) -> None:
        self._fds: list[int] = []
        self._folder: str | None = None
        self.ca = self._path(access.ca, "ca.crt")
        self.cert = self._path(access.client_cert, "client.crt")
        self.key = self._path(access.client_key, "client.key")

    def _path(self, pem: Pem | None, name: str) -> str | None:
        if pem is None:
            return None
        if hasattr(os, "memfd_create"):
            fd = os.memfd_create(f"stagecheck-{name}")
            os.write(fd, pem.data)
            self._fds.append(fd)
            return f"/proc/self/fd/{fd}"
        if self._folder is None:  # no memfd (not Linux): a private folder, removed at close
            self._folder = tempfile.mkdtemp(prefix="stagecheck-tls-")
        path = Path(self._folder) / name
        path.touch(mode=0o600)
        path.write_bytes(pem.data)
        return str(path)

    def close(self) -> None:
        for fd in self._fds:
            with suppress(OSError):
                os.close(fd)
        self._fds.clear()
        if self._folder:
            for child in Path(self._folder).iterdir():
                child.unlink(missing_ok=True)
            with suppress(OSError):
                os.rmdir(self._folder)


def ssl_context(access: ClusterAccess, files: PemFiles) -> ssl.SSLContext | bool:
    """The TLS settings for httpx: False for plain HTTP or insecure-skip-tls-verify."""
    if not access.verifies_tls:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        _load_client_certificate(context, access, files)
        return context if access.server.startswith("https://") else False
    try:
        context = ssl.create_default_context(
            cadata=access.ca.data.decode("ascii", "replace") if access.ca else None
        )
    except (ssl.SSLError, ValueError):
        origin = access.ca.origin if access.ca else "the system's trust store"
        raise KubeconfigError(
            f"{access.where}: {origin} holds no readable PEM certificate"
        ) from None
    _load_client_certificate(context, access, files)
    return context


def _load_client_certificate(
    context: ssl.SSLContext, access: ClusterAccess, files: PemFiles
) -> None:
    if files.cert and files.key:
        try:
            context.load_cert_chain(files.cert, files.key)
        except ssl.SSLError as error:
            raise KubeconfigError(
                f"{access.where}: the client certificate and key of user {access.user!r} cannot "
                f"be loaded together ({error.reason or 'not PEM, or they do not match'})"
            ) from None


def ca_subjects(access: ClusterAccess) -> str:
    """The subjects of the CA certificates the access trusts, for a message."""
    if access.ca is None:
        return "the system's trust store"
    with suppress(ssl.SSLError, ValueError):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cadata=access.ca.data.decode("ascii", "replace"))
        certs: list[dict[str, Any]] = context.get_ca_certs()
        names = ["/".join(_name(rdn) for rdn in c.get("subject", ())) for c in certs]
        if names:
            return f"the CA {', '.join(repr(n) for n in names)} ({access.ca.origin})"
    return access.ca.origin


def _name(rdn: tuple[tuple[str, str], ...]) -> str:
    return "+".join(f"{_SHORT.get(key, key)}={value}" for key, value in rdn)


def untrusted(error: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind a transport error, if that is what it is."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def untrusted_message(access: ClusterAccess, failure: ssl.SSLCertVerificationError) -> str:
    name = access.tls_server_name or urlsplit(access.server).hostname
    said = failure.verify_message or str(failure.reason or "")
    if "mismatch" in said.lower():
        return (
            f"the API server at {access.server} ({access.where}) presented a certificate "
            f"that is not valid for the name {name} ({said}); if the server is reached by "
            "another name, set tls-server-name for cluster "
            f"{access.cluster!r}"
        )
    return (
        f"the API server at {access.server} ({access.where}) presented a certificate that "
        f"{ca_subjects(access)} does not sign (server name {name}; {said}): the kubeconfig "
        f"belongs to another cluster, or the cluster's CA changed; log in again to get its CA"
    )
