"""Configuration, read in one place.

A run talks to exactly one target. It is chosen, in this order, by the pytest option
``--target``, the environment variable ``STAGECHECK_TARGET``, or ``default-target`` in the
repository's ``stagecheck.toml``; the built-in default is the local sandbox. A kubeconfig's
current context is never used: a ``kind`` or ``cluster`` target always names its context, and
``in-cluster`` (the pod's own service account) is used only when named, even inside a pod.

Nothing below this module reads the environment; everything else receives a ``Settings``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from stagecheck.errors import ConfigError

TargetType = Literal["sandbox", "kind", "cluster", "in-cluster"]
TARGET_TYPES: tuple[TargetType, ...] = ("sandbox", "kind", "cluster", "in-cluster")
CONFIG_FILE = "stagecheck.toml"
DEFAULT_NAMESPACE = "private-ai-demo"
# Where every pod finds its service account's token, CA and namespace.
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")

# The keys a target in stagecheck.toml may have, by type; anything else is a typo, refused.
COMMON_KEYS = (
    "type",
    "namespace",
    "vars",
    "endpoints",
    "insecure-endpoints",
    "endpoint-auth",
    "endpoint-timeout",
)
DEFAULT_ENDPOINT_TIMEOUT_S = 60.0  # a call to one of the stage's services, at most
TARGET_KEYS: dict[str, tuple[str, ...]] = {
    "sandbox": (*COMMON_KEYS, "endpoints-via"),
    "kind": (*COMMON_KEYS, "cluster", "context", "kubeconfig"),
    "cluster": (*COMMON_KEYS, "context", "kubeconfig"),
    "in-cluster": COMMON_KEYS,
}
# The variables steps read from a target's ``vars``, and what each is for.
TARGET_VARS = {
    "namespace": "the stage namespace (set from the target's namespace)",
    "model": "the model name the model server serves",
    "llama_stack_model": "the model's id in Llama Stack, when it differs from model",
    "embedding_model": "the embedding model Llama Stack uses for vector stores",
    "inference_provider": "the Llama Stack provider id that serves the model",
    "vector_io_provider": "the Llama Stack vector_io provider id (default milvus)",
    "probe_image": "the image of the connectivity probe pod",
    "docling_convert": "no: skip the Docling conversion step",
    "docling_convert_options": "JSON options sent with each Docling conversion",
}


@dataclass(frozen=True)
class InCluster:
    """How a pod reaches its own cluster: the API server's address from the environment the
    kubelet sets, and the service account's mounted files."""

    server: str
    account_dir: Path


@dataclass(frozen=True)
class Target:
    """One cluster a run talks to, with the values that differ between environments."""

    name: str
    type: TargetType
    kubeconfig: Path
    context: str | None
    namespace: str
    allow_writes: bool
    vars: Mapping[str, str] = field(default_factory=dict)
    # How steps reach the stage's services: name -> URL or "route:NAME" (see engine.endpoints).
    endpoints: Mapping[str, str] = field(default_factory=dict)
    insecure_endpoints: frozenset[str] = frozenset()  # TLS not verified for these, by choice
    # The bearer token an endpoint gets: "kubeconfig" (the context's token, as after `oc login`),
    # "serviceaccount:NAME" (a short-lived TokenRequest), "env:VARIABLE", or "none".
    endpoint_auth: Mapping[str, str] = field(default_factory=dict)
    # The longest any call to a stage service may take; one that times out marks that
    # endpoint unresponsive for the rest of the run (later steps on it fail at once).
    endpoint_timeout_s: float = DEFAULT_ENDPOINT_TIMEOUT_S
    in_cluster: InCluster | None = None  # for the in-cluster type

    def describe(self) -> str:
        if self.in_cluster is not None:
            return (
                f"target {self.name!r} (in-cluster: the pod's service account, "
                f"{self.in_cluster.server}, namespace {self.namespace!r})"
            )
        where = (
            f"context {self.context!r} of {self.kubeconfig}"
            if self.context
            else str(self.kubeconfig)
        )
        return f"target {self.name!r} ({self.type}: {where}, namespace {self.namespace!r})"


CleanupPolicy = Literal["always", "on-success", "never"]
CLEANUP_POLICIES: tuple[CleanupPolicy, ...] = ("always", "on-success", "never")


@dataclass(frozen=True)
class RunOptions:
    """How this run treats what it creates."""

    id: str  # labels every object the run creates: stagecheck.io/run=<id>
    cleanup: CleanupPolicy = "always"
    plan: bool = False  # list what provisioning would apply, write nothing


def repository_of(path: Path) -> Path | None:
    """The repository a feature file or folder belongs to: the nearest folder at or above it
    that holds ``stagecheck.toml``. Paths named in its features are relative to it."""
    path = path.resolve()
    for folder in [path, *path.parents] if path.is_dir() else path.parents:
        if (folder / CONFIG_FILE).is_file():
            return folder
    return None


def run_root(args: list[str], invoked_in: Path, rootdir: Path) -> Path:
    """The repository of a run: that of the first path it was given (``features/stage2``,
    ``x.feature::test``), else of the folder it was started in, else pytest's rootdir."""
    for arg in args:
        path = invoked_in / arg.split("::")[0]
        if path.exists():
            return repository_of(path) or rootdir
    return repository_of(invoked_in) or rootdir


def new_run_id() -> str:
    return time.strftime("run-%Y%m%d-%H%M%S-") + secrets.token_hex(2)


@dataclass(frozen=True)
class Settings:
    """Everything configurable about a run, resolved once at start-up."""

    root: Path  # the repository: the folder holding stagecheck.toml (repository_of)
    cache_dir: Path  # built binaries and environments, keyed by version; shared by runs
    sandbox_dir: Path  # the running sandbox's state: kubeconfig, logs, data
    reports_dir: Path
    target: Target
    run: RunOptions = field(default_factory=lambda: RunOptions(new_run_id()))
    # The environment as the run started: where secrets named by features are read from.
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)


def sandbox_kubeconfig(sandbox_dir: Path) -> Path:
    return sandbox_dir / "kubeconfig"


def load_settings(
    root: Path,
    env: Mapping[str, str] | None = None,
    target_option: str | None = None,
    kubeconfig_option: str | None = None,
    allow_writes_option: bool = False,
    reports_option: str | None = None,
    cleanup_option: str | None = None,
    plan_option: bool = False,
) -> Settings:
    """Resolve the run's settings from options, environment and ``stagecheck.toml``."""
    env = os.environ if env is None else env
    # STAGECHECK_CONFIG: another stagecheck.toml (a ConfigMap mounted into the run's pod).
    file_config = _read_config_file(Path(env.get("STAGECHECK_CONFIG") or root / CONFIG_FILE))
    cache_dir = Path(env.get("STAGECHECK_CACHE") or Path.home() / ".cache" / "stagecheck")
    sandbox_dir = Path(env.get("STAGECHECK_SANDBOX_DIR") or cache_dir / "sandbox")
    spec = target_option or env.get("STAGECHECK_TARGET") or file_config.get("default-target")
    target = _resolve_target(
        spec or "sandbox",
        file_config.get("targets", {}),
        sandbox_dir=sandbox_dir,
        kubeconfig_override=kubeconfig_option or env.get("STAGECHECK_KUBECONFIG"),
        env=env,
        allow_writes=allow_writes_option,
    )
    # ARTIFACT_DIR: where OpenShift CI (and Prow) collect a job's artifacts.
    reports = Path(
        reports_option
        or env.get("STAGECHECK_REPORTS")
        or env.get("ARTIFACT_DIR")
        or root / "reports"
    )
    cleanup = cleanup_option or env.get("STAGECHECK_CLEANUP") or "always"
    if cleanup not in CLEANUP_POLICIES:
        raise ConfigError(f"cleanup policy {cleanup!r}: use one of {', '.join(CLEANUP_POLICIES)}")
    run = RunOptions(id=new_run_id(), cleanup=cleanup, plan=plan_option)
    return Settings(
        root=root,
        cache_dir=cache_dir,
        sandbox_dir=sandbox_dir,
        reports_dir=reports,
        target=target,
        run=run,
        environ=dict(env),
    )


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None


def _resolve_target(
    spec: str,
    defined: Mapping[str, Any],
    *,
    sandbox_dir: Path,
    kubeconfig_override: str | None,
    env: Mapping[str, str],
    allow_writes: bool,
) -> Target:
    """Turn ``sandbox``, ``kind[:NAME]``, ``cluster:CONTEXT`` or a defined name into a Target."""
    if spec in defined:
        entry = dict(defined[spec])
    else:
        kind_of, _, argument = spec.partition(":")
        if kind_of not in TARGET_TYPES:
            known = ", ".join(sorted({*TARGET_TYPES, *defined}))
            raise ConfigError(
                f"unknown target {spec!r}: use sandbox, kind[:NAME], cluster:CONTEXT, "
                f"in-cluster or a target defined in {CONFIG_FILE} (known: {known})"
            )
        entry = {"type": kind_of}
        if kind_of == "kind":
            entry["cluster"] = argument or "kind"
        elif kind_of == "in-cluster" and argument:
            raise ConfigError("target 'in-cluster' takes no argument: --target in-cluster")
        elif kind_of == "cluster":
            if not argument:
                raise ConfigError(
                    "target 'cluster' needs a kubeconfig context: --target cluster:CONTEXT "
                    "(the current context is never used implicitly), "
                    f"or define one in {CONFIG_FILE}"
                )
            entry["context"] = argument
    return _target_from_entry(spec, entry, sandbox_dir, kubeconfig_override, env, allow_writes)


def _target_from_entry(
    name: str,
    entry: Mapping[str, Any],
    sandbox_dir: Path,
    kubeconfig_override: str | None,
    env: Mapping[str, str],
    allow_writes: bool,
) -> Target:
    type_ = entry.get("type")
    if type_ not in TARGET_TYPES:
        raise ConfigError(
            f"target {name!r} in {CONFIG_FILE} has type {type_!r}; expected one of "
            + ", ".join(TARGET_TYPES)
        )
    _check_keys(name, type_, entry)
    in_cluster = _in_cluster(name, env) if type_ == "in-cluster" else None
    namespace = str(entry.get("namespace") or _pod_namespace(in_cluster) or DEFAULT_NAMESPACE)
    variables = {str(k): str(v) for k, v in dict(entry.get("vars", {})).items()}
    variables.setdefault("namespace", namespace)
    endpoints = {str(k): str(v) for k, v in dict(entry.get("endpoints", {})).items()}
    for endpoint, spec in endpoints.items():
        if not (spec.startswith(("http://", "https://", "route:")) or PORT_FORWARD.match(spec)):
            raise ConfigError(
                f"target {name!r}: endpoint {endpoint} = {spec!r}; use a URL (https://...), "
                "route:NAME, port-forward:service/NAME:PORT[/PATH] or port-forward:pod/NAME:PORT"
            )
    insecure = frozenset(str(n) for n in entry.get("insecure-endpoints", []))
    auth = {str(k): str(v) for k, v in dict(entry.get("endpoint-auth", {})).items()}
    for endpoint, source in auth.items():
        if not ENDPOINT_AUTH.match(source):
            raise ConfigError(
                f"target {name!r}: endpoint-auth {endpoint} = {source!r}; use kubeconfig, "
                "serviceaccount:NAME, env:VARIABLE or none"
            )
    timeout = entry.get("endpoint-timeout", DEFAULT_ENDPOINT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(
            f"target {name!r}: endpoint-timeout = {timeout!r}; give the seconds a call to a "
            "stage service may take, a number above 0 (default 60)"
        )
    if type_ == "sandbox":
        kubeconfig = Path(kubeconfig_override or sandbox_kubeconfig(sandbox_dir))
        context = None
        writes = True  # the sandbox is ours: provisioning there is always allowed
        sandbox_endpoints, sandbox_vars = sandbox_services(
            kubeconfig.parent / "dataplane" / "endpoints.json"
        )
        via = str(env.get("STAGECHECK_ENDPOINTS_VIA") or entry.get("endpoints-via") or "loopback")
        if via not in SANDBOX_ENDPOINTS_VIA:
            raise ConfigError(
                f"sandbox endpoints via {via!r}: use one of {', '.join(SANDBOX_ENDPOINTS_VIA)}"
            )
        if via == "port-forward":  # as a kind user reaches them, through the API server
            sandbox_endpoints |= sandbox_forwards(kubeconfig.parent / "forwards.json")
        endpoints = {**sandbox_endpoints, **endpoints}
        variables = {**sandbox_vars, **variables}
        # The sandbox kubeconfig holds a client certificate, no token: the stage's workload
        # account, which the world allows to use the pipelines route, calls the pipelines API.
        auth = {"pipelines": "serviceaccount:rag-workload-sa", **auth}
    elif in_cluster is not None:
        kubeconfig, context, writes = in_cluster.account_dir, None, allow_writes
    else:
        kubeconfig = _user_kubeconfig(entry, kubeconfig_override, env)
        if type_ == "kind":
            context = str(entry.get("context") or f"kind-{entry.get('cluster', 'kind')}")
        else:
            if not entry.get("context"):
                raise ConfigError(
                    f"target {name!r} in {CONFIG_FILE} names no context; a cluster target must "
                    "name its kubeconfig context explicitly"
                )
            context = str(entry["context"])
        writes = allow_writes
    return Target(
        name=name,
        type=type_,
        kubeconfig=kubeconfig.expanduser(),
        context=context,
        namespace=namespace,
        allow_writes=writes,
        vars=variables,
        endpoints=endpoints,
        insecure_endpoints=insecure,
        endpoint_auth=auth,
        endpoint_timeout_s=float(timeout),
        in_cluster=in_cluster,
    )


def _check_keys(name: str, type_: str, entry: Mapping[str, Any]) -> None:
    accepted = TARGET_KEYS[type_]
    unknown = sorted(set(entry) - set(accepted))
    if unknown:
        raise ConfigError(
            f"target {name!r} in {CONFIG_FILE}: unknown key {', '.join(map(repr, unknown))} for "
            f"a {type_} target; accepted: {', '.join(accepted)}"
        )
    variables = entry.get("vars", {})
    if not isinstance(variables, Mapping):
        raise ConfigError(f"target {name!r} in {CONFIG_FILE}: vars must be a table")
    unknown = sorted(set(variables) - set(TARGET_VARS))
    if unknown:
        raise ConfigError(
            f"target {name!r} in {CONFIG_FILE}: unknown var {', '.join(map(repr, unknown))}; "
            f"accepted: {', '.join(TARGET_VARS)}"
        )


def _in_cluster(name: str, env: Mapping[str, str]) -> InCluster:
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConfigError(
            f"target {name!r} is in-cluster, but KUBERNETES_SERVICE_HOST and "
            "KUBERNETES_SERVICE_PORT are not set: this process is not running in a pod; "
            "name a kubeconfig target instead (kind, cluster:CONTEXT)"
        )
    host = f"[{host}]" if ":" in host else host  # an IPv6 service address
    # STAGECHECK_SERVICEACCOUNT_DIR: where the account's files are, if not the standard mount.
    account = Path(env.get("STAGECHECK_SERVICEACCOUNT_DIR") or SERVICE_ACCOUNT_DIR)
    return InCluster(server=f"https://{host}:{port}", account_dir=account)


def _pod_namespace(in_cluster: InCluster | None) -> str | None:
    """The pod's own namespace, the default stage namespace of an in-cluster target."""
    if in_cluster is None:
        return None
    try:
        return (in_cluster.account_dir / "namespace").read_text().strip() or None
    except OSError:
        return None


# The sandbox's data plane names its services after what runs; features name them after the
# role they play in the stage.
# How an endpoint is reached through a port-forward (see engine.endpoints).
PORT_FORWARD = re.compile(
    r"port-forward:(?P<kind>service|svc|pod)/(?P<name>[a-z0-9.-]+):(?P<port>[A-Za-z0-9-]+)"
    r"(?P<path>/.*)?$"
)
ENDPOINT_AUTH = re.compile(
    r"^(kubeconfig|none|serviceaccount:[a-z0-9.-]+|env:[A-Za-z_][A-Za-z0-9_]*)$"
)
SANDBOX_ENDPOINTS_VIA = ("loopback", "port-forward")
SANDBOX_SERVICE_ROLES = {
    "milvus": "milvus",
    "llm": "model",
    "llamastack": "llama-stack",
    "s3": "s3",
    "kfp": "pipelines",
    "docling": "docling",
}


def _sandbox_state(path: Path) -> dict[str, Any]:
    """A state file the running sandbox wrote (empty when it is not up)."""
    if not path.exists():
        return {}
    try:
        return dict(json.loads(path.read_text()))
    except ValueError as error:
        raise ConfigError(f"{path} is not valid JSON: {error}") from None


def sandbox_forwards(path: Path) -> dict[str, str]:
    """The sandbox's ``port-forward:`` endpoint specs (none when it is not up)."""
    return {str(k): str(v) for k, v in _sandbox_state(path).items()}


def sandbox_services(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Endpoints of the running sandbox data plane and the facts only the sandbox knows (its
    embedding model, Docling's offline options); none when it is not up. The stage's own
    names (the model, the providers) are the target's ``vars``, as for any cluster: the
    sandbox's data plane serves what its world configures, never what a check expects."""
    found = _sandbox_state(path)
    if not found:
        return {}, {}
    services = found.get("services", {})
    endpoints = {
        role: services[name] for name, role in SANDBOX_SERVICE_ROLES.items() if name in services
    }
    models = found.get("models", {})
    variables = {
        "embedding_model": str(models.get("embedding", "")),
        "docling_convert_options": json.dumps(found["docling_options"])
        if found.get("docling_options")
        else "",
    }
    return endpoints, {k: v for k, v in variables.items() if v}


def _user_kubeconfig(
    entry: Mapping[str, Any], override: str | None, env: Mapping[str, str]
) -> Path:
    if override:
        return Path(override)
    if entry.get("kubeconfig"):
        return Path(str(entry["kubeconfig"]))
    # KUBECONFIG may list several files; like kubectl's default we take the first that exists.
    for candidate in (env.get("KUBECONFIG") or "").split(os.pathsep):
        if candidate and Path(candidate).expanduser().exists():
            return Path(candidate)
    return Path(env.get("HOME", str(Path.home()))) / ".kube" / "config"
