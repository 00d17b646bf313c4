"""Where a bearer token comes from: the kubeconfig itself, a file that rotates, or an exec plugin.

Every source answers ``token()`` and, after the API server answered 401, ``renew(rejected)``:
whether a different token is now at hand, so the request is worth sending once more. No
message here ever holds a token; an exec plugin's own error line is shown with anything that
looks like a credential cut out.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from stagecheck.errors import CredentialError
from stagecheck.redaction import REDACTED, redact_text, remember

EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
EXEC_TIMEOUT_S = 30.0
# What looks like a credential on a plugin's error line: a JWT, or a long run of key material.
_CREDENTIAL_LIKE = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*|[A-Za-z0-9+/=_~.-]{32,}")


class TokenSource(Protocol):
    def token(self) -> str: ...

    def renew(self, rejected: str) -> bool:
        """After a 401 for ``rejected``: whether a different token is available now."""
        ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class StaticToken:
    """A token written into the kubeconfig, as `oc login` writes it."""

    value: str = field(repr=False)
    origin: str

    def __post_init__(self) -> None:
        remember(self.value)

    def token(self) -> str:
        return self.value

    def renew(self, rejected: str) -> bool:
        return False

    def describe(self) -> str:
        return self.origin


class TokenFile:
    """A token read from a file and read again when the file changes (a projected service
    account token is rotated by the kubelet while the run goes on)."""

    def __init__(self, path: Path, origin: str) -> None:
        self.path, self.origin = path, origin
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._value = ""

    def token(self) -> str:
        with self._lock:
            try:
                stat = self.path.stat()
                stamp = (stat.st_mtime_ns, stat.st_size)
                if stamp != self._stamp:
                    self._value, self._stamp = self.path.read_text().strip(), stamp
                    remember(self._value)
            except OSError as error:
                if not self._value:
                    raise CredentialError(
                        f"{self.origin} ({self.path}) cannot be read: "
                        f"{error.strerror or type(error).__name__}"
                    ) from None
            if not self._value:
                raise CredentialError(f"{self.origin} ({self.path}) is empty")
            return self._value

    def renew(self, rejected: str) -> bool:
        return self.token() != rejected

    def describe(self) -> str:
        return f"{self.origin} ({self.path})"


class ExecPlugin:
    """A client-go credential plugin: run it, read its ExecCredential, keep the token until the
    expiry it states (or until the server rejects it), then run it again."""

    def __init__(
        self,
        command: str,
        args: tuple[str, ...],
        env: Mapping[str, str],
        api_version: str,
        install_hint: str | None,
        cluster_info: Mapping[str, Any] | None,
        owner: str,
        clock: Any = time.time,
    ) -> None:
        self.command, self.args, self.env = command, args, dict(env)
        self.api_version, self.install_hint, self.owner = api_version, install_hint, owner
        self.cluster_info = cluster_info
        self._clock = clock
        self._lock = threading.Lock()
        self._value: str | None = None
        self._expires: float | None = None
        self.runs = 0  # how often the plugin ran (the tests read it)

    def describe(self) -> str:
        return f"the exec plugin `{Path(self.command).name}` of {self.owner}"

    def token(self) -> str:
        with self._lock:
            if self._value is None or (
                self._expires is not None and self._clock() >= self._expires
            ):
                self._value, self._expires = self._run()
            return self._value

    def renew(self, rejected: str) -> bool:
        with self._lock:
            if self._value == rejected:
                self._value, self._expires = self._run()
            return self._value != rejected

    def _run(self) -> tuple[str, float | None]:
        spec: dict[str, Any] = {"interactive": False}
        if self.cluster_info is not None:
            spec["cluster"] = dict(self.cluster_info)
        info = {"apiVersion": self.api_version, "kind": "ExecCredential", "spec": spec}
        # The plugin inherits the run's environment, as kubectl's plugins do, plus its own.
        environ = {**os.environ, **self.env, "KUBERNETES_EXEC_INFO": json.dumps(info)}
        name = f"`{' '.join([self.command, *self.args])}`"
        try:
            done = subprocess.run(
                [self.command, *self.args],
                env=environ,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=EXEC_TIMEOUT_S,
            )
        except FileNotFoundError:
            hint = f" ({first_line(self.install_hint)})" if self.install_hint else ""
            raise CredentialError(
                f"{self.describe()} runs {name}, which is not installed or not on PATH{hint}"
            ) from None
        except PermissionError:
            raise CredentialError(
                f"{self.describe()} runs {name}, which is not executable"
            ) from None
        except subprocess.TimeoutExpired:
            raise CredentialError(
                f"{self.describe()} ran {name}, which gave no credential within "
                f"{EXEC_TIMEOUT_S:.0f} s"
            ) from None
        self.runs += 1
        if done.returncode != 0:
            said = first_line(done.stderr) or "nothing on stderr"
            raise CredentialError(
                f"{self.describe()} ran {name}, which failed with exit status "
                f"{done.returncode}: {said}"
            )
        return self._read(done.stdout, name)

    def _read(self, output: str, name: str) -> tuple[str, float | None]:
        try:
            credential = json.loads(output)
        except ValueError:
            credential = None
        if not isinstance(credential, dict) or credential.get("kind") != "ExecCredential":
            raise CredentialError(f"{self.describe()} ran {name}, which printed no ExecCredential")
        if credential.get("apiVersion") != self.api_version:
            raise CredentialError(
                f"{self.describe()} ran {name}, which answered in "
                f"{credential.get('apiVersion')!r}, not the {self.api_version!r} it was asked for"
            )
        status = credential.get("status") or {}
        if status.get("clientCertificateData") and not status.get("token"):
            raise CredentialError(
                f"{self.describe()} returned a client certificate; stagecheck supports exec "
                "plugins that return a token"
            )
        token = status.get("token")
        if not isinstance(token, str) or not token:
            raise CredentialError(f"{self.describe()} ran {name}, whose answer has no token")
        remember(token)
        expires = status.get("expirationTimestamp")
        if expires is None:
            return token, None
        try:
            return token, datetime.fromisoformat(str(expires)).timestamp()
        except ValueError:
            raise CredentialError(
                f"{self.describe()} ran {name}, whose expirationTimestamp is not RFC 3339"
            ) from None


def first_line(text: str | None, limit: int = 200) -> str:
    """The first non-empty line of a tool's message, with credential-like runs cut out."""
    line = next((s.strip() for s in (text or "").splitlines() if s.strip()), "")
    return redact_text(_CREDENTIAL_LIKE.sub(REDACTED, line))[:limit]
