"""Provisioning: apply manifests (a folder or a kustomization), create secrets from variables,
label namespaces; remember every change so the run can undo it, in reverse order.

Safety, in order: a read-only target refuses the first write before it is sent (the client
enforces it); a manifest set is validated whole (YAML, kinds, a server-side dry run) before
anything of it is applied; fields another manager owns (GitOps, an operator) are never taken
over (a conflict names the manager and the field); objects that existed before the run are
never deleted and are given back as they were (the fields the run applied are released), a
Secret that existed with other values is not overwritten; objects the run creates carry its
run label; an object another live run created is left alone. Every change is written to the
run's journal (``runs``) before it is made, so a run killed outright is cleaned up by the next.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stagecheck.config import RunOptions
from stagecheck.engine import s3
from stagecheck.engine.endpoints import Endpoint
from stagecheck.engine.kubernetes import Cluster, ObjectRef
from stagecheck.engine.runs import (
    MANAGED_BY,
    RUN_LABEL,
    Change,
    Journal,
    created_by_live_run,
    field_manager,
    undo,
)
from stagecheck.errors import (
    InUseByAnotherRun,
    KubeApiError,
    ManifestError,
    MissingCredential,
    Planned,
    StagecheckError,
    UnknownKind,
    WriteRefused,
)
from stagecheck.kube.client import Kube, secret_value
from stagecheck.kube.discovery import ResourceType
from stagecheck.redaction import remember

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# Applied first, in this order, so that what others depend on exists (as Helm and kubectl do).
KIND_ORDER = (
    "Namespace",
    "CustomResourceDefinition",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "PersistentVolumeClaim",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "Service",
)


@dataclass(frozen=True)
class Manifest:
    doc: dict[str, Any]
    source: str  # file:document, or the kustomization folder

    def describe(self) -> str:
        meta = self.doc.get("metadata", {})
        where = f"{meta['namespace']}/" if meta.get("namespace") else ""
        return f"{self.doc.get('kind')} {where}{meta.get('name')} ({self.source})"


@dataclass
class Ledger:
    """What a scenario changed, as undo actions; undone newest first. Each undone change is
    struck from the run's journal (``forget``), which recorded it before it was made."""

    undo: list[tuple[str, Callable[[], object]]] = field(default_factory=list)
    forget: Callable[[int], None] = lambda token: None
    tokens: list[int | None] = field(default_factory=list)

    def record(
        self, description: str, action: Callable[[], object], token: int | None = None
    ) -> None:
        self.undo.append((description, action))
        self.tokens.append(token)

    def descriptions(self) -> list[str]:
        return [d for d, _ in self.undo]

    def undo_all(self) -> list[str]:
        """Undo everything; returns the problems met (each undo is attempted)."""
        problems = []
        while self.undo:
            (description, action), token = self.undo.pop(), self.tokens.pop()
            try:
                action()
            except StagecheckError as error:
                problems.append(f"{description}: {error}")
                continue
            except Exception as error:  # noqa: BLE001 - every undo is tried; each problem told
                problems.append(f"{description}: {type(error).__name__}: {error}")
                continue
            if token is not None:
                self.forget(token)
        return problems


def find_kustomize(search_path: str, built: Callable[[], Path | None]) -> list[str] | None:
    """How to render a kustomization, where users have it: ``kustomize build`` on PATH, else
    ``kubectl kustomize`` or ``oc kustomize`` on PATH, else the sandbox's own build (looked
    for only then)."""
    if found := shutil.which("kustomize", path=search_path):
        return [found, "build"]
    for tool in ("kubectl", "oc"):
        if found := shutil.which(tool, path=search_path):
            return [found, "kustomize"]
    own = built()
    return [str(own), "build"] if own is not None else None


def load_manifests(path: Path, kustomize: list[str] | None) -> list[Manifest]:
    """The objects of a file, a folder of YAML files, or a kustomization folder."""
    if not path.exists():
        raise ManifestError(f"{path} does not exist")
    if path.is_dir() and any((path / name).exists() for name in KUSTOMIZATION_FILES):
        return _kustomize(path, kustomize)
    files = (
        sorted(f for f in path.iterdir() if f.suffix in (".yaml", ".yml", ".json"))
        if path.is_dir()
        else [path]
    )
    if not files:
        raise ManifestError(f"{path} holds no .yaml, .yml or .json file")
    return [m for f in files for m in _parse(f.read_text(), str(f))]


def _kustomize(folder: Path, kustomize: list[str] | None) -> list[Manifest]:
    if kustomize is None:
        raise ManifestError(
            f"{folder} is a kustomization, and no kustomize was found: put kustomize, kubectl "
            "or oc on PATH (scripts/setup also builds one for the sandbox)"
        )
    command = [*kustomize, str(folder)]
    built = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if built.returncode != 0:
        said = built.stderr.strip()
        raise ManifestError(f"{folder}: {' '.join(kustomize[-2:])} failed: {said}")
    return _parse(built.stdout, f"{folder} ({Path(kustomize[0]).name} {kustomize[1]})")


def _parse(text: str, source: str) -> list[Manifest]:
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ManifestError(f"{source}{line}: not valid YAML: {problem}") from None
    manifests: list[Manifest] = []
    for index, doc in enumerate(docs, start=1):
        where = f"{source} document {index}"
        if doc.get("kind") == "List":
            manifests.extend(Manifest(item, where) for item in doc.get("items", []))
            continue
        missing = [k for k in ("apiVersion", "kind") if not doc.get(k)]
        if not isinstance(doc, dict) or missing or not doc.get("metadata", {}).get("name"):
            raise ManifestError(
                f"{where}: not a Kubernetes object (needs apiVersion, kind and metadata.name)"
            )
        manifests.append(Manifest(doc, where))
    return manifests


class Provisioner:
    """Applies and creates on behalf of one scenario, recording how to undo it."""

    def __init__(
        self,
        cluster: Cluster,
        run: RunOptions,
        kustomize: list[str] | None,
        ledger: Ledger,
        journal: Journal,
    ) -> None:
        self.cluster, self.run, self.kustomize, self.ledger = cluster, run, kustomize, ledger
        self.journal = journal
        self.manager = field_manager(run.id)

    @property
    def kube(self) -> Kube:
        return self.cluster.kube

    # -- apply ---------------------------------------------------------------------------------
    def apply(self, path: Path, within: float | None) -> list[ObjectRef]:
        manifests = sorted(load_manifests(path, self.kustomize), key=_apply_order)
        resolved = self._resolve(manifests)
        if self.run.plan:
            raise Planned([f"apply {m.describe()}" for m, _ in resolved])
        self._require_writes(f"apply {path}")
        self._dry_run(resolved)
        refs = [self._apply_one(manifest, resource) for manifest, resource in resolved]
        if within is not None:
            for ref in refs:
                self.cluster.expect_ready(ref, within)
        return refs

    def _resolve(self, manifests: list[Manifest]) -> list[tuple[Manifest, ResourceType | None]]:
        """Each manifest's resource type; None for kinds whose CRD the same set defines."""
        defined = {
            (m.doc["spec"]["group"], m.doc["spec"]["names"]["kind"])
            for m in manifests
            if m.doc.get("kind") == "CustomResourceDefinition"
        }
        resolved: list[tuple[Manifest, ResourceType | None]] = []
        unserved: dict[str, list[str]] = {}  # the error for a kind -> the objects of that kind
        for manifest in manifests:
            group = manifest.doc["apiVersion"].rpartition("/")[0]
            try:
                spelling = f"{manifest.doc['kind']}.{group}" if group else manifest.doc["kind"]
                resolved.append((manifest, self.cluster.discovery.resolve(spelling)))
            except UnknownKind as error:
                if (group, manifest.doc["kind"]) not in defined:
                    unserved.setdefault(str(error), []).append(manifest.describe())
                resolved.append((manifest, None))
        if len(unserved) == 1 and sum(map(len, unserved.values())) == 1:
            [(why, [what])] = [(e, w) for e, w in unserved.items()]
            raise ManifestError(f"{what}: {why}")
        if unserved:  # every kind the set needs and the cluster lacks, at once
            lines = [f"\n  - {', '.join(what)}: {why}" for why, what in unserved.items()]
            raise ManifestError(
                f"{len(unserved)} kind(s) of this set are not served by the cluster, so "
                "nothing of it was applied:" + "".join(lines)
            )
        return resolved

    def _dry_run(self, resolved: list[tuple[Manifest, ResourceType | None]]) -> None:
        """Let the API server validate every object before any is applied."""
        namespaces_in_set = {
            m.doc["metadata"]["name"] for m, _ in resolved if m.doc["kind"] == "Namespace"
        }
        for manifest, resource in resolved:
            if resource is None:
                continue
            namespace = self._namespace(manifest, resource)
            if namespace in namespaces_in_set and not self._exists_namespace(namespace):
                continue  # its namespace comes with the set; the real apply validates it
            try:
                self.kube.apply(
                    resource.object_path(manifest.doc["metadata"]["name"], namespace),
                    self._body(manifest, resource, labelled=True),
                    field_manager=self.manager,
                    dry_run=True,
                )
            except KubeApiError as error:
                if _on_run_label(error):  # it exists, made by another run
                    path = resource.object_path(manifest.doc["metadata"]["name"], namespace)
                    self._refuse_if_another_runs(manifest.describe(), self.kube.get_or_none(path))
                    if len(error.causes) == len(_on_run_label(error)):
                        continue  # a dead run's, kept: the real apply leaves its labels alone
                raise ManifestError(
                    _rejected(manifest, error, "so nothing of this set was applied")
                ) from None

    def _apply_one(self, manifest: Manifest, resource: ResourceType | None) -> ObjectRef:
        if resource is None:  # its CRD was applied a moment ago
            group = manifest.doc["apiVersion"].rpartition("/")[0]
            resource = self.cluster.discovery.resolve_when_served(f"{manifest.doc['kind']}.{group}")
        namespace = self._namespace(manifest, resource)
        name = manifest.doc["metadata"]["name"]
        path = resource.object_path(name, namespace)
        ref = ObjectRef(resource, name, namespace)
        current = self.kube.get_or_none(path)
        self._refuse_if_another_runs(f"{ref}", current)
        existed = current is not None
        if not existed:  # never delete what was there before the run
            change: Change = {"op": "delete", "path": path, "what": str(ref)}
        else:  # give back the fields this run applied: the object is as it was before
            bare = {"apiVersion": manifest.doc["apiVersion"], "kind": manifest.doc["kind"]}
            bare["metadata"] = {"name": name, **({"namespace": namespace} if namespace else {})}
            change = {"op": "release", "path": path, "body": bare, "what": f"fields of {ref}"}
        token = self.journal.intend(change)
        try:
            self.kube.apply(
                path, self._body(manifest, resource, labelled=not existed), self.manager
            )
        except KubeApiError as error:
            self.journal.forget(token)
            if _on_run_label(error):
                raise InUseByAnotherRun(_another_run(str(ref), "a moment ago")) from None
            raise ManifestError(_rejected(manifest, error)) from None
        description = f"delete {ref}" if not existed else f"restore {ref} as it was before the run"
        self.ledger.record(description, self._undo(change), token)
        return ref

    def _undo(self, change: Change) -> Callable[[], None]:
        return lambda: undo(self.kube, self.run.id, change)

    def _refuse_if_another_runs(self, what: str, current: dict[str, Any] | None) -> None:
        other = created_by_live_run(self.journal, current)
        if other is not None:
            raise InUseByAnotherRun(_another_run(what, f"by run {other}, which is still running"))

    def _body(self, manifest: Manifest, resource: ResourceType, labelled: bool) -> dict[str, Any]:
        body: dict[str, Any] = copy.deepcopy(manifest.doc)
        meta = body.setdefault("metadata", {})
        if resource.namespaced:
            meta["namespace"] = self._namespace(manifest, resource)
        if labelled:
            labels = meta.setdefault("labels", {})
            labels.update({RUN_LABEL: self.run.id, MANAGED_BY: "stagecheck"})
        return body

    def _namespace(self, manifest: Manifest, resource: ResourceType) -> str | None:
        if not resource.namespaced:
            return None
        return str(manifest.doc["metadata"].get("namespace") or self.cluster.namespace)

    def _exists_namespace(self, name: str | None) -> bool:
        return name is None or self.kube.get_or_none(f"/api/v1/namespaces/{name}") is not None

    # -- secrets and labels --------------------------------------------------------------------
    def create_secret(
        self, name: str, keys: list[str], values: Mapping[str, str], origin: str
    ) -> None:
        """A Secret holding the named variables; values never appear in any message."""
        missing = [k for k in keys if not values.get(k)]
        if missing:
            raise MissingCredential(
                f"missing credential for secret {name}: {', '.join(missing)} not set in {origin}"
            )
        namespace = self.cluster.namespace
        if self.run.plan:
            raise Planned([f"create Secret {namespace}/{name} from {', '.join(keys)}"])
        self._require_writes(f"create secret {name}")
        path = f"/api/v1/namespaces/{namespace}/secrets/{name}"
        before = self.kube.get_or_none(path)
        self._refuse_if_another_runs(f"Secret {namespace}/{name}", before)
        if before is not None:
            self._reuse_secret(before, keys, values)
            return
        labels = {RUN_LABEL: self.run.id, MANAGED_BY: "stagecheck"}
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "type": "Opaque",
            "stringData": {k: values[k] for k in keys},
        }
        change: Change = {"op": "delete", "path": path, "what": f"Secret {namespace}/{name}"}
        token = self.journal.intend(change)
        try:
            self.kube.apply(path, body, self.manager)
        except KubeApiError:
            self.journal.forget(token)
            raise
        self.ledger.record(f"delete Secret {namespace}/{name}", self._undo(change), token)

    def _reuse_secret(
        self, secret: dict[str, Any], keys: list[str], values: Mapping[str, str]
    ) -> None:
        """A Secret that was there before the run is used as it is when it holds the same
        values, and never overwritten (its old values could not be given back)."""
        differ = [k for k in keys if secret_value(secret, k) != values[k]]
        if differ:
            meta = secret["metadata"]
            raise WriteRefused(
                f"Secret {meta.get('namespace')}/{meta['name']} existed before the run with "
                f"other values for {', '.join(differ)}: stagecheck does not overwrite what it "
                "did not create; delete it, or name another Secret in the feature"
            )

    def label_namespace(self, name: str, key: str, value: str) -> None:
        path = f"/api/v1/namespaces/{name}"
        if self.run.plan:
            raise Planned([f"label Namespace {name} {key}={value}"])
        self._require_writes(f"label namespace {name}")
        current = self.kube.get(path)
        before = (current["metadata"].get("labels") or {}).get(key)
        if before == value:
            return
        what = f"label {key} of Namespace {name}"
        change: Change = {"op": "label", "path": path, "key": key, "value": value,
                          "before": before, "what": what}  # fmt: skip
        token = self.journal.intend(change)
        self.kube.patch(path, {"metadata": {"labels": {key: value}}})
        self.ledger.record(f"restore {what}", self._undo(change), token)

    def ensure_bucket(self, endpoint: Endpoint, bucket: str, secret: str) -> None:
        """The S3 bucket exists (created with the Secret's keys if missing; removed at the end
        when this run created it and it is empty again)."""
        if self.run.plan:
            raise Planned([f"ensure S3 bucket {bucket} at {endpoint.url}"])
        self._require_writes(f"ensure S3 bucket {bucket}")
        namespace = self.cluster.namespace
        keys = s3.credentials_from_secret(
            self.cluster, namespace, secret, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"
        )
        if s3.ensure_bucket(endpoint, keys, bucket):
            self.ledger.record(
                f"remove S3 bucket {bucket}", lambda: s3.remove_bucket(endpoint, keys, bucket)
            )

    def _require_writes(self, what: str) -> None:
        target = self.kube.target
        if not target.allow_writes:
            raise WriteRefused(
                f"refused to {what}: {target.describe()} is read-only in this run, and nothing "
                "was sent; rerun with --allow-writes to let this run change it "
                "(or --plan to list what it would change)"
            )


def _rejected(manifest: Manifest, error: KubeApiError, consequence: str = "") -> str:
    """The API server's own words for a rejected object. On a 422 its message repeats every
    rejected field in one bracketed line; those (details.causes[]) get a line each instead."""
    head = f"{manifest.describe()} was rejected by the API server (HTTP {error.status}"
    head += f" {error.reason})" if error.reason else ")"
    if consequence:
        head += f", {consequence}"
    if error.status == 409 and error.causes:  # server-side apply: fields of other managers
        lines = [f"\n  - {field}: {message}" for field, message in error.causes]
        return (
            f"{head}: another manager owns fields this set would change:" + "".join(lines)
            + "\n  stagecheck does not take fields over from GitOps or an operator: change "
            "them where they are managed, or leave them out of this set"
        )  # fmt: skip
    summary, invalid, _ = error.api_message.partition(" is invalid: ")
    if not (error.causes and invalid):
        return f"{head}: {error.api_message}"
    lines = [
        f"\n  - {field if field not in ('', '<nil>') else '(object)'}: {message}"
        for field, message in error.causes
    ]
    return f"{head}: {summary} is invalid:" + "".join(lines)


def _on_run_label(error: KubeApiError) -> list[str]:
    """The conflicting fields of an apply that are stagecheck's own labels (another run's)."""
    if error.status != 409:
        return []
    return [f for f, _ in error.causes if RUN_LABEL in f or MANAGED_BY in f]


def _another_run(what: str, when: str) -> str:
    return (
        f"{what} was created {when}: its cleanup will delete it, so this run leaves it "
        "alone; run one provisioning run per namespace at a time, or give this run a "
        "namespace of its own"
    )


def _apply_order(manifest: Manifest) -> int:
    kind = manifest.doc.get("kind", "")
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments, blank lines and ``export`` allowed)."""
    if not path.is_file():
        raise MissingCredential(f"{path} does not exist: copy its template and fill it in")
    values = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        values[key.strip()] = value.strip().strip("'\"")
        remember(values[key.strip()])  # a .env holds credentials: never shown from here on
    return values
