"""How one target reaches its API server, read from its kubeconfig: server, TLS, credentials.

``load_access`` reads the file once, checks every field stagecheck uses for its type, and
refuses at start what it cannot do (naming the field), so a run never finds out half-way. It
never puts a value of the file into a message: a kubeconfig holds tokens and keys.

Paths in the file (certificate-authority, client-certificate, client-key, tokenFile, and an
exec command with a slash in it) are relative to the file's folder, as kubectl reads them.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from stagecheck.config import Target
from stagecheck.errors import KubeconfigError, TargetUnreachable
from stagecheck.kube.credentials import (
    EXEC_API_VERSIONS,
    ExecPlugin,
    StaticToken,
    TokenFile,
    TokenSource,
)
from stagecheck.redaction import remember

# Fields a kubeconfig may hold that stagecheck cannot honour, and what to do instead.
UNSUPPORTED_USER_FIELDS = {
    "auth-provider": "legacy auth-provider plugins are not supported; use an exec plugin "
    "(for OIDC, kubelogin), or a token from `oc login`",
    "username": "basic authentication was removed from Kubernetes; use a token or certificate",
    "password": "basic authentication was removed from Kubernetes; use a token or certificate",
    "as": "impersonation is not supported; use the kubeconfig of that user",
    "as-uid": "impersonation is not supported; use the kubeconfig of that user",
    "as-groups": "impersonation is not supported; use the kubeconfig of that user",
    "as-user-extra": "impersonation is not supported; use the kubeconfig of that user",
}
PROXY_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class Pem:
    """PEM bytes and where they came from (for messages; the bytes are never shown)."""

    data: bytes
    origin: str


@dataclass(frozen=True)
class ClusterAccess:
    """Everything a client needs to reach one API server as one user."""

    server: str
    where: str  # "context 'dev' of /home/me/.kube/config", for messages
    cluster: str
    user: str
    ca: Pem | None  # None: the system's trust store
    insecure: bool  # insecure-skip-tls-verify: TLS not verified, said loudly
    tls_server_name: str | None
    proxy_url: str | None
    client_cert: Pem | None
    client_key: Pem | None
    token: TokenSource | None

    @property
    def verifies_tls(self) -> bool:
        return self.server.startswith("https://") and not self.insecure

    def describe_credentials(self) -> str:
        """What the run authenticates with, in words (no value)."""
        parts = [self.token.describe()] if self.token else []
        if self.client_cert:
            parts.append(f"the client certificate of user {self.user!r}")
        return " and ".join(parts) or "no credentials"

    def describe_tls(self) -> str:
        if not self.server.startswith("https://"):
            return f"NO TLS: {self.server} is plain HTTP"
        if self.insecure:
            return (
                f"TLS NOT VERIFIED: insecure-skip-tls-verify is set for cluster {self.cluster!r} "
                "(anyone between here and the server can read the credentials)"
            )
        trust = self.ca.origin if self.ca else "the system's trust store"
        name = f", server name {self.tls_server_name}" if self.tls_server_name else ""
        return f"TLS verified against {trust}{name}"


def load_access(target: Target) -> ClusterAccess:
    """The target's kubeconfig context (its named context, else the file's current one), or
    for an in-cluster target the pod's service account."""
    if target.in_cluster is not None:
        return in_cluster_access(target.in_cluster.server, target.in_cluster.account_dir)
    path = target.kubeconfig
    if not path.exists():
        if target.type == "sandbox":
            raise TargetUnreachable(sandbox_not_running(None))
        raise KubeconfigError(f"{target.describe()}: kubeconfig {path} does not exist")
    return read_kubeconfig(path, target.context, target.describe())


def in_cluster_access(server: str, account_dir: Path) -> ClusterAccess:
    """As client-go's in-cluster config: the mounted token (read again when the kubelet rotates
    it) and CA, the API server at the address the kubelet put in the environment."""
    token, ca = account_dir / "token", account_dir / "ca.crt"
    for needed in (token, ca):
        if not needed.is_file():
            raise KubeconfigError(
                f"the in-cluster target needs the pod's service account, but {needed} is not "
                "there: is automountServiceAccountToken false for the pod or its account?"
            )
    try:
        authority = Pem(ca.read_bytes(), f"the pod's service account CA ({ca})")
    except OSError as error:
        raise KubeconfigError(f"the in-cluster CA {ca} {_why(error)}") from None
    return ClusterAccess(
        server=server,
        where=f"the pod's service account ({account_dir})",
        cluster="in-cluster",
        user="the pod's service account",
        ca=authority,
        insecure=False,
        tls_server_name=None,
        proxy_url=None,
        client_cert=None,
        client_key=None,
        token=TokenFile(token, "the pod's service account token"),
    )


def read_kubeconfig(path: Path, context: str | None, describe: str) -> ClusterAccess:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise KubeconfigError(f"{describe}: kubeconfig {path} {_why(error)}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise KubeconfigError(f"kubeconfig {path} is not valid YAML{_where(error)}") from None
    return _Reader(path, describe).access(document, context)


class _Reader:
    """Reads one kubeconfig document; every complaint names the file and the field."""

    def __init__(self, path: Path, describe: str) -> None:
        self.path, self.describe, self.folder = path, describe, path.parent

    def fail(self, field: str, problem: str) -> KubeconfigError:
        return KubeconfigError(f"kubeconfig {self.path}: {field} {problem}")

    def access(self, document: Any, context: str | None) -> ClusterAccess:
        if not isinstance(document, dict):
            raise KubeconfigError(
                f"kubeconfig {self.path} is not a kubeconfig: expected a mapping with clusters, "
                f"users and contexts, found {_type(document)}"
            )
        contexts = self.named(document, "contexts", "context")
        clusters = self.named(document, "clusters", "cluster")
        users = self.named(document, "users", "user")
        chosen = context or self.string(document, "current-context", "current-context")
        if not chosen:
            raise self.fail("current-context", "is not set and the target names no context")
        if chosen not in contexts:
            raise KubeconfigError(
                f"{self.describe}: context {chosen!r} is not in {self.path} "
                f"(contexts there: {', '.join(contexts) or 'none'})"
            )
        ctx_field = f"contexts[{chosen}].context"
        entry = contexts[chosen]
        cluster_name = self.required(entry, "cluster", ctx_field)
        user_name = self.string(entry, "user", ctx_field) or ""
        if cluster_name not in clusters:
            raise self.fail(
                f"{ctx_field}.cluster", f"names cluster {cluster_name!r}, not in clusters"
            )
        if user_name and user_name not in users:
            raise self.fail(f"{ctx_field}.user", f"names user {user_name!r}, not in users")
        where = f"context {chosen!r} of {self.path}"
        cluster = self.cluster(clusters[cluster_name], cluster_name)
        user = self.user(users.get(user_name, {}), f"users[{user_name}].user", user_name, cluster)
        if user["token"] is None and user["cert"] is None:
            raise KubeconfigError(
                f"{where} has no credentials (user {user_name!r} has no token, tokenFile, exec "
                "plugin or client certificate): the cluster would see this run as "
                "system:anonymous; log in again (oc login) or name another context"
            )
        return ClusterAccess(
            server=cluster["server"],
            where=where,
            cluster=cluster_name,
            user=user_name,
            ca=cluster["ca"],
            insecure=cluster["insecure"],
            tls_server_name=cluster["tls_server_name"],
            proxy_url=cluster["proxy_url"],
            client_cert=user["cert"],
            client_key=user["key"],
            token=user["token"],
        )

    def cluster(self, entry: dict[str, Any], name: str) -> dict[str, Any]:
        field = f"clusters[{name}].cluster"
        server = self.required(entry, "server", field)
        parts = urlsplit(server)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise self.fail(f"{field}.server", "is not an http(s) URL with a host")
        insecure = self.boolean(entry, "insecure-skip-tls-verify", field)
        ca = self.pem(entry, "certificate-authority", field, f"cluster {name!r}")
        if insecure and ca:
            raise self.fail(
                field,
                "sets both insecure-skip-tls-verify and a certificate authority; kubectl refuses "
                "this too: keep one",
            )
        proxy = self.string(entry, "proxy-url", field)
        if proxy and urlsplit(proxy).scheme not in PROXY_SCHEMES:
            raise self.fail(
                f"{field}.proxy-url",
                f"uses scheme {urlsplit(proxy).scheme or 'none'!r}; stagecheck supports "
                f"{' and '.join(PROXY_SCHEMES)} proxies",
            )
        return {
            "server": server.rstrip("/"),
            "insecure": insecure,
            "ca": ca,
            "tls_server_name": self.string(entry, "tls-server-name", field),
            "proxy_url": proxy,
        }

    def user(
        self, entry: dict[str, Any], field: str, name: str, cluster: Mapping[str, Any]
    ) -> dict[str, Any]:
        for unsupported, advice in UNSUPPORTED_USER_FIELDS.items():
            if entry.get(unsupported) not in (None, "", [], {}):
                raise self.fail(f"{field}.{unsupported}", f"is set: {advice}")
        cert = self.pem(entry, "client-certificate", field, f"user {name!r}")
        key = self.pem(entry, "client-key", field, f"user {name!r}")
        if (cert is None) != (key is None):
            have, lack = (
                ("client-certificate", "client-key")
                if cert
                else ("client-key", "client-certificate")
            )
            raise self.fail(field, f"has a {have} but no {lack}")
        token_file = self.string(entry, "tokenFile", field)
        token = self.string(entry, "token", field)
        exec_ = self.exec_plugin(entry, f"{field}.exec", name, cluster)
        if exec_ and (token or token_file):
            raise self.fail(field, "has both an exec plugin and a token: keep one")
        source: TokenSource | None = None
        if exec_:
            source = exec_
        elif token_file:  # as client-go: the file, re-read, wins over a static token
            source = TokenFile(self.local(token_file), f"the token file of user {name!r}")
        elif token:
            source = StaticToken(token, f"the token of user {name!r}")
        return {"cert": cert, "key": key, "token": source}

    def exec_plugin(
        self, user: dict[str, Any], field: str, name: str, cluster: Mapping[str, Any]
    ) -> ExecPlugin | None:
        entry = user.get("exec")
        if entry is None:
            return None
        if not isinstance(entry, dict):
            raise self.fail(field, f"must be a mapping (it is {_type(entry)})")
        command = self.required(entry, "command", field)
        api_version = self.required(entry, "apiVersion", field)
        if api_version not in EXEC_API_VERSIONS:
            raise self.fail(
                f"{field}.apiVersion",
                f"is {api_version!r}; supported: {', '.join(EXEC_API_VERSIONS)}",
            )
        args = entry.get("args") or []
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise self.fail(f"{field}.args", "must be a list of strings")
        env: dict[str, str] = {}
        for index, item in enumerate(entry.get("env") or []):
            if not (
                isinstance(item, dict)
                and isinstance(item.get("name"), str)
                and isinstance(item.get("value"), str)
            ):
                raise self.fail(f"{field}.env[{index}]", "must have a string name and value")
            env[item["name"]] = item["value"]
        mode = self.string(entry, "interactiveMode", field) or "IfAvailable"
        if mode not in ("Never", "IfAvailable", "Always"):
            raise self.fail(f"{field}.interactiveMode", "must be Never, IfAvailable or Always")
        if mode == "Always":
            raise self.fail(
                f"{field}.interactiveMode",
                "is Always: the plugin needs a terminal, and a stagecheck run has none; log in "
                "first so the plugin can answer without asking",
            )
        resolved = str(self.local(command)) if "/" in command else command
        cluster_info = (
            {"server": cluster["server"], "insecure-skip-tls-verify": cluster["insecure"]}
            if self.boolean(entry, "provideClusterInfo", field)
            else None
        )
        return ExecPlugin(
            command=resolved,
            args=tuple(args),
            env=env,
            api_version=api_version,
            install_hint=self.string(entry, "installHint", field),
            cluster_info=cluster_info,
            owner=f"user {name!r}",
        )

    # -- typed fields ---------------------------------------------------------------------
    def named(self, document: dict[str, Any], key: str, inner: str) -> dict[str, dict[str, Any]]:
        items = document.get(key) or []
        if not isinstance(items, list):
            raise self.fail(key, f"must be a list (it is {_type(items)})")
        found: dict[str, dict[str, Any]] = {}
        for index, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise self.fail(f"{key}[{index}]", "must be a mapping with a string name")
            body = item.get(inner) or {}
            if not isinstance(body, dict):
                raise self.fail(
                    f"{key}[{item['name']}].{inner}", f"must be a mapping (it is {_type(body)})"
                )
            found[item["name"]] = body
        return found

    def string(self, entry: Mapping[str, Any], key: str, field: str) -> str | None:
        value = entry.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.fail(_join(field, key), f"must be a string (it is {_type(value)})")
        return value

    def required(self, entry: Mapping[str, Any], key: str, field: str) -> str:
        value = self.string(entry, key, field)
        if value is None:
            raise self.fail(_join(field, key), "is missing")
        return value

    def boolean(self, entry: Mapping[str, Any], key: str, field: str) -> bool:
        value = entry.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(f"{field}.{key}", f"must be true or false (it is {_type(value)})")
        return value

    def pem(self, entry: Mapping[str, Any], key: str, field: str, owner: str) -> Pem | None:
        """``key`` (a path) or ``key-data`` (base64), read now so a bad one fails at start."""
        data = self.string(entry, f"{key}-data", field)
        path = self.string(entry, key, field)
        if data:
            if key == "client-key":
                remember(data)
            try:
                return Pem(base64.b64decode(data, validate=True), f"{key}-data of {owner}")
            except (binascii.Error, ValueError):
                raise self.fail(f"{field}.{key}-data", "is not base64") from None
        if path:
            local = self.local(path)
            try:
                return Pem(local.read_bytes(), f"{key} {local}")
            except OSError as error:
                raise self.fail(f"{field}.{key}", f"names {local}, which {_why(error)}") from None
        return None

    def local(self, path: str) -> Path:
        expanded = Path(os.path.expanduser(path))
        return expanded if expanded.is_absolute() else self.folder / expanded


def sandbox_not_running(host: str | None) -> str:
    return (
        "the sandbox control plane is not running"
        + (f" (nothing answers at {host})" if host else "")
        + ": start it with `scripts/sandbox up` (or `scripts/control-plane up` for an empty "
        "one), or name another target with --target (kind, cluster:CONTEXT, or one defined "
        "in stagecheck.toml)"
    )


def _join(field: str, key: str) -> str:
    return key if field == key else f"{field}.{key}"


def _type(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, int | float) else "empty"
    )


def _where(error: yaml.YAMLError) -> str:
    """Line and column of a YAML error, and its kind, never the text around it."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return at + (f" ({problem})" if problem else "")


def _why(error: Exception) -> str:
    if isinstance(error, FileNotFoundError):
        return "does not exist"
    if isinstance(error, PermissionError):
        return "may not be read (permission denied)"
    if isinstance(error, UnicodeDecodeError):
        return "is not text"
    return getattr(error, "strerror", None) or type(error).__name__
