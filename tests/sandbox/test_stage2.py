"""The stage-2 sandbox world, healthy and with its fault variants, under the stage-2 features:
green when healthy, red with the cause when broken."""

from __future__ import annotations

import json
import time
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from minio import Minio
from pytest_bdd.scenario import make_python_name

from stagecheck.config import load_settings, sandbox_forwards, sandbox_services
from stagecheck.kube.client import JsonObject
from stagecheck.sandbox.cli import start, stop
from stagecheck.sandbox.controlplane import ControlPlane
from stagecheck.sandbox.faults import FAULTS
from stagecheck.sandbox.standins.node import NODE_NAME
from stagecheck.sandbox.world import apply_documents, load_documents
from tests.support import (
    ROOT,
    Run,
    audit_events,
    installed_stagecheck,
    issue_token,
    pod_environment,
    read_junit,
    run_id,
    run_pytest,
    stage_repository,
    stage_vars,
    token_kubeconfig,
    usernames,
)

FEATURES = str(ROOT / "features" / "stage2")


RUN_DIRS: dict[str, Path] = {}  # variant -> the folder of its run
PARALLEL: dict[str, tuple[Run, Path]] = {}  # variant -> its run on two workers, its folder
BUCKET_FEATURE = str(ROOT / "tests" / "features" / "provisioning" / "bucket.feature")


def buckets(plane: ControlPlane) -> list[str]:
    state = plane.state / "dataplane"
    keys = json.loads((state / "s3-credentials.json").read_text())
    url = json.loads((state / "endpoints.json").read_text())["services"]["s3"]
    store = Minio(
        url.split("//")[1],
        access_key=keys["access_key"],
        secret_key=keys["secret_key"],
        secure=False,
    )
    return sorted(b.name for b in store.list_buckets())


FORWARDED: dict[str, Run] = {}  # variant -> its run through port-forwards
VIA_PORT_FORWARD = {"STAGECHECK_ENDPOINTS_VIA": "port-forward"}


def stage2_run(
    tmp: Path,
    fault: str | None,
    keep_keys: bool = False,
    extra: tuple[str, ...] = (),
    forwarded: tuple[str, ...] | None = None,
    in_cluster: bool = False,
    parallel: bool = False,
    installed: bool = False,
    nightly: bool = False,
) -> Iterator[Run]:
    """The stage-2 features on the variant; with ``forwarded`` (pytest arguments), a second run
    reaching the services through port-forwards instead of their loopback URLs; with
    ``parallel``, the same run on two workers right after it (the world as old: a fault's
    Deployment turns ProgressDeadlineExceeded ten minutes on, and the message with it)."""
    plane = ControlPlane(ROOT, tmp / "plane", name=f"stagecheck-{fault or 'healthy'}")
    cache = load_settings(ROOT).cache_dir
    RUN_DIRS[fault or "healthy"] = tmp
    try:
        start(ROOT, cache, plane, "stage2", FAULTS[fault] if fault else None)
        if keep_keys:  # so the test can prove the key appears nowhere
            keys = json.loads((plane.state / "dataplane" / "s3-credentials.json").read_text())
            (tmp / "real-secret-key").write_text(keys["secret_key"])
        # A fault's every consequence is asserted below, so a red preflight must not stop it.
        preflight = ["--no-preflight-stop"] if fault else []
        args = ["--target", "sandbox", "--kubeconfig", str(plane.kubeconfig), FEATURES, *extra]
        args += preflight
        run = run_pytest(args, tmp)
        (tmp / "buckets-after").write_text(" ".join(buckets(plane)))
        if parallel:
            # Its reports as deep as the serial run's, so that the page's relative links match.
            beside = _fresh(tmp.parent / f"{tmp.name}-parallel")
            PARALLEL[fault or "healthy"] = (run_pytest([*args, "-n", "2"], beside), beside)
        if forwarded is not None:
            # As a kind or OpenShift user runs it: a token-only kubeconfig (no client
            # certificate), every service through a port-forward tunnel.
            kubeconfig = runner_kubeconfig(plane)
            forwarded_run = run_pytest(
                ["--target", "sandbox", "--kubeconfig", str(kubeconfig), *forwarded, *preflight],
                _fresh(tmp / "forwarded"),
                VIA_PORT_FORWARD,
            )
            FORWARDED[fault or "healthy"] = forwarded_run
            SEEN_AS[fault or "healthy"] = usernames(
                audit_events(plane, run_id(forwarded_run.output))
            )
        if installed:
            INSTALLED[fault or "healthy"] = installed_run(plane, tmp / "installed")
        if in_cluster:
            for account in ("stagecheck-reader", "stage-runner-without-role"):
                IN_CLUSTER[account] = in_cluster_run(plane, tmp / account, account)
        if nightly:
            NIGHTLY[fault or "healthy"] = nightly_job_run(plane, _fresh(tmp / "nightly"))
        yield run
    finally:
        stop(ROOT, cache, plane)


RUNNER = "system:serviceaccount:private-ai-demo:stage-runner"
SEEN_AS: dict[str, set[str]] = {}  # variant -> who the API server saw the forwarded run as


def runner_kubeconfig(plane: ControlPlane) -> Path:
    """A kubeconfig with only a real TokenRequest token of ServiceAccount stage-runner (bound
    to cluster-admin here: this proves the token path, not least privilege). It lies beside
    the sandbox's own, where the sandbox target finds the data plane's state."""
    admin = plane.connect()
    try:
        apply_documents(
            admin,
            [
                {"apiVersion": "v1", "kind": "ServiceAccount",
                 "metadata": {"name": "stage-runner", "namespace": "private-ai-demo"}},
                {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                 "metadata": {"name": "stage-runner"},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                             "name": "cluster-admin"},
                 "subjects": [{"kind": "ServiceAccount", "name": "stage-runner",
                               "namespace": "private-ai-demo"}]},
            ],
        )  # fmt: skip
        token = issue_token(admin, "private-ai-demo", "stage-runner")
    finally:
        admin.close()
    return token_kubeconfig(plane, plane.state / "kubeconfig-stage-runner", {"token": token})


INSTALLED: dict[str, tuple[Run, Path]] = {}  # variant -> its run from a stage repository, it


def installed_run(plane: ControlPlane, tmp: Path) -> tuple[Run, Path]:
    """features/stage2 as a stage repository runs it: only ``features/`` and ``stagecheck.toml``
    (default target: the sandbox), stagecheck installed from a wheel in its own environment,
    started from the repository's features/ folder (so pytest's rootdir is not the repository,
    and neither is the working directory); reports where its owners would look for them."""
    tmp = _fresh(tmp)
    python = installed_stagecheck(_fresh(tmp / "install"))
    repository = stage_repository(_fresh(tmp / "repository"))
    run = run_pytest(
        ["stage2", "--kubeconfig", str(plane.kubeconfig)],
        tmp,
        {"STAGECHECK_REPORTS": ""},  # unset: the repository's own reports/
        python=str(python),
        cwd=repository / "features",
    )
    return run, repository


IN_CLUSTER: dict[str, tuple[Run, set[str]]] = {}  # account -> its run, who the API saw


def in_cluster_run(plane: ControlPlane, tmp: Path, account: str) -> tuple[Run, set[str]]:
    """features/stage2 as deploy/cronjob.yaml's pod runs it: --target in-cluster with the
    account's token, CA and namespace and KUBERNETES_SERVICE_*; deploy/'s reader RBAC applied;
    its stagecheck.toml mounted (STAGECHECK_CONFIG), naming the stage's Services through
    port-forwards (a pod would name them by DNS; this machine cannot resolve those)."""
    admin = plane.connect()
    try:
        account_doc = {"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": account, "namespace": "private-ai-demo"}}  # fmt: skip
        apply_documents(admin, [*load_documents(ROOT / "deploy" / "reader-rbac.yaml"), account_doc])
        env = pod_environment(plane, admin, "private-ai-demo", account, _fresh(tmp) / "sa")
    finally:
        admin.close()
    endpoints, variables = sandbox_services(plane.state / "dataplane" / "endpoints.json")
    variables = {**variables, **stage_vars()}  # the stage's names, as the sandbox target has them
    endpoints = {**endpoints, **sandbox_forwards(plane.state / "forwards.json")}
    config = tmp / "stagecheck.toml"
    config.write_text(
        '[targets.in-cluster]\ntype = "in-cluster"\n'
        f"endpoints = {toml_table(endpoints)}\nvars = {toml_table(variables)}\n"
        'endpoint-auth = { pipelines = "serviceaccount:rag-workload-sa" }\n'
    )
    started = time.monotonic()
    run = run_pytest(
        [FEATURES, "--target", "in-cluster"], tmp, {**env, "STAGECHECK_CONFIG": str(config)}
    )
    run = replace(run, seconds=time.monotonic() - started)
    return run, usernames(audit_events(plane, run_id(run.output)))


NIGHTLY: dict[str, tuple[JsonObject, Run, set[str]]] = {}  # variant -> Job, run, who the API saw


def nightly_job_run(plane: ControlPlane, tmp: Path) -> tuple[JsonObject, Run, set[str]]:
    """deploy/'s Job as shipped, run on the sandbox's node that runs processes: ``kubectl
    apply -k deploy/`` (the reader account, its roles, the reports volume) and job.yaml, with
    two sandbox facts added: placement on that node (kwok's nodes run nothing) and the
    sandbox's stagecheck.toml (the shipped in-cluster target's endpoints and auth, the
    sandbox's names) from a ConfigMap. Its calls to the stage's Services go by their DNS names
    through the pod's mesh gate, Milvus's gRPC and the pipelines Route's TLS included; its
    sidecar is stopped by the check itself. Returns the finished Job, its results (the
    reports volume's junit.xml; the container's log as output) and who the API server saw."""
    shipped = tomllib.loads((ROOT / "stagecheck.toml").read_text())["targets"]["in-cluster"]
    _, variables = sandbox_services(plane.state / "dataplane" / "endpoints.json")
    config = (
        '[targets.in-cluster]\ntype = "in-cluster"\n'
        f"endpoints = {toml_table(shipped['endpoints'])}\n"
        f"endpoint-auth = {toml_table(shipped['endpoint-auth'])}\n"
        f"vars = {toml_table({**variables, **stage_vars()})}\n"
    )
    job = load_documents(ROOT / "deploy" / "job.yaml")[0]
    pod = job["spec"]["template"]["spec"]
    pod["nodeSelector"] = {"kubernetes.io/hostname": NODE_NAME}
    pod["volumes"].append({"name": "sandbox-config", "configMap": {"name": "stagecheck-sandbox"}})
    container = pod["containers"][0]
    container["volumeMounts"].append({"name": "sandbox-config", "mountPath": "/etc/stagecheck"})
    container["env"].append(
        {"name": "STAGECHECK_CONFIG", "value": "/etc/stagecheck/stagecheck.toml"}
    )
    namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
    kube = plane.connect()
    try:
        apply_documents(
            kube,
            [
                *load_documents(ROOT / "deploy" / "reader-rbac.yaml"),
                *load_documents(ROOT / "deploy" / "reports-pvc.yaml"),
                {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "stagecheck-sandbox", "namespace": namespace},
                 "data": {"stagecheck.toml": config}},
                job,
            ],
        )  # fmt: skip
        started, path = time.monotonic(), f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}"
        while time.monotonic() - started < 300:
            done = kube.get(path)
            ended = {c["type"] for c in (done.get("status") or {}).get("conditions") or []
                     if c["status"] == "True"} & {"Complete", "Failed"}  # fmt: skip
            if ended:
                break
            time.sleep(1)
        assert ended, f"the Job did not finish in 300 s: {done.get('status')}"
        pods = kube.get(
            f"/api/v1/namespaces/{namespace}/pods", {"labelSelector": f"job-name={name}"}
        )
        finished = pods["items"][0]
        log = kube.get_text(
            f"/api/v1/namespaces/{namespace}/pods/{finished['metadata']['name']}/log",
            {"container": "stagecheck"},
        )
        claim = kube.get(
            f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/stagecheck-reports"
        )
        reports = plane.state / "standin-node" / "volumes" / claim["spec"]["volumeName"]
        # the reports' junit.xml names a case "Feature > Scenario"; pytest's, the test function
        found = read_junit(reports / "junit.xml")
        scenarios = {make_python_name(k.split(" > ", 1)[-1]): v for k, v in found.items()}
        run = Run(0 if "Complete" in ended else 1, log, scenarios, time.monotonic() - started)
        return {**done, "pod": finished}, run, usernames(audit_events(plane, run_id(log)))
    finally:
        kube.close()


def toml_table(values: dict[str, str]) -> str:
    return "{ " + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in values.items()) + " }"


def _fresh(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    yield from stage2_run(
        tmp_path_factory.mktemp("healthy"),
        None,
        extra=(BUCKET_FEATURE,),
        forwarded=(FEATURES,),
        in_cluster=True,
        parallel=True,
        installed=True,
        nightly=True,
    )


@pytest.fixture(scope="module")
def seed_fault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    yield from stage2_run(tmp_path_factory.mktemp("seed"), "seed-no-sidecar", nightly=True)


@pytest.fixture(scope="module")
def milvus_down(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    yield from stage2_run(
        tmp_path_factory.mktemp("milvus"),
        "milvus-down",
        forwarded=(FEATURES, "-m", "milvus"),
        parallel=True,
    )


PROBE_SCENARIO = make_python_name("Llama Stack reaches the model server from inside the mesh")
WRITING_SCENARIOS = {  # scenario -> what it writes (planned, not made, on a read-only target)
    PROBE_SCENARIO: "create a probe pod",
    make_python_name("Milvus stores and finds vectors"): "create a scratch collection",
    make_python_name("A question is answered from ingested documents"): "new vector store",
    make_python_name("A question is answered from the documents of a folder"): "new vector store",
}
BUCKET_SCENARIO = make_python_name("A bucket is ensured for the length of the scenario")


def test_the_healthy_sandbox_is_green(healthy: Run) -> None:
    assert healthy.scenarios, healthy.output[-2000:]
    failed = {name: r.message for name, r in healthy.scenarios.items() if r.outcome != "passed"}
    assert failed == {}


def test_the_connectivity_probe_runs_on_the_sandbox_and_reaches_the_model(healthy: Run) -> None:
    """The probe pod ran on the stand-in node (not skipped: that node runs containers) and,
    injected like Llama Stack's pods, passed the mesh's STRICT rule to the predictor."""
    result = healthy.scenarios[PROBE_SCENARIO]
    assert result.outcome == "passed", result.message


def test_the_seed_incident_turns_the_probe_red_naming_the_missing_sidecar(
    seed_fault: Run,
) -> None:
    """Without the injection annotation the probe (Llama Stack's mesh settings) gets no
    istio-proxy, and the model's sidecar resets its plaintext call (PeerAuthentication STRICT
    from the SMCP's security.dataPlane.mtls)."""
    result = seed_fault.result("Llama Stack reaches the model server from inside the mesh")
    assert result.outcome == "failed"
    for fragment in [
        "workload private-ai-demo/llama-stack",
        "probe without an istio-proxy sidecar",
        "the service requires mTLS (PeerAuthentication STRICT)",
        "llama-stack's pods get no sidecar either",
    ]:
        assert fragment in result.message, result.message
    assert "the connection was reset" in result.message or (
        "closed the connection without a reply" in result.message
    ), result.message


def test_the_healthy_sandbox_is_green_through_port_forwards(healthy: Run) -> None:
    """What a kind user gets: every service reached through the API server to its pod."""
    forwarded = FORWARDED["healthy"]
    stage2 = healthy.scenarios.keys() - {BUCKET_SCENARIO}
    assert forwarded.scenarios.keys() == stage2, forwarded.output[-2000:]
    failed = {n: r.message for n, r in forwarded.scenarios.items() if r.outcome != "passed"}
    assert failed == {}
    assert "Unhandled" not in forwarded.output  # no tunnel thread died on the way
    assert SEEN_AS["healthy"] == {RUNNER}  # every API request the run made


def test_a_stage_repository_with_only_features_and_its_config_runs_green_installed(
    healthy: Run,
) -> None:
    """pip install of stagecheck gives a repository the whole vocabulary (no conftest): every
    scenario of features/stage2 green, its documents found from the repository, not from
    where pytest was started, and its reports in the repository's reports/."""
    run, repository = INSTALLED["healthy"]
    assert run.returncode == 0, run.output[-3000:]
    assert run.scenarios.keys() == healthy.scenarios.keys() - {BUCKET_SCENARIO}, run.output
    failed = {n: r.message for n, r in run.scenarios.items() if r.outcome != "passed"}
    assert failed == {}
    assert sorted(p.name for p in repository.iterdir()) == [
        "features",
        "reports",
        "stagecheck.toml",
    ]
    page = (repository / "reports" / "stage2-status.md").read_text()
    assert "features/stage2/llama-stack.feature" in page
    assert str(ROOT) not in page  # nothing of this checkout: the installed copy ran


def test_the_healthy_sandbox_is_green_in_cluster_as_the_reader_account(healthy: Run) -> None:
    """What the nightly CronJob sees: the reader role of deploy/ is enough for the stage, and
    every API request was made as that account."""
    run, seen = IN_CLUSTER["stagecheck-reader"]
    assert run.scenarios.keys() == healthy.scenarios.keys() - {BUCKET_SCENARIO}, run.output[-3000:]
    failed = {
        n: r.message
        for n, r in run.scenarios.items()
        if r.outcome != "passed" and n not in WRITING_SCENARIOS
    }
    assert failed == {}
    # a reader run writes nothing, to the cluster or its services: the probe pod, the scratch
    # collection and the vector stores are planned, not made
    for name, what in WRITING_SCENARIOS.items():
        result = run.scenarios[name]
        assert result.outcome == "skipped" and "plan only" in result.message, (name, result)
        assert what in result.message, result.message
    assert seen == {"system:serviceaccount:private-ai-demo:stagecheck-reader"}


def test_the_nightly_job_as_shipped_completes_through_the_mesh_on_the_healthy_sandbox(
    healthy: Run,
) -> None:
    """deploy/job.yaml in the sandbox: its pod joins the mesh (the injector gives it istio-proxy),
    reaches every Service by its DNS name through the mesh gate (HTTP, Milvus's gRPC through
    CONNECT, the pipelines Route through the router with TLS verified against its service
    account's CA bundle), passes every scenario a reader can, stops its own sidecar, and the
    Job completes; every API request was made as stagecheck-reader."""
    job, run, seen = NIGHTLY["healthy"]
    pod = job["pod"]
    assert run.returncode == 0, run.output[-3000:]
    assert "istio-proxy" in [c["name"] for c in pod["spec"]["containers"]]
    assert pod["status"]["phase"] == "Succeeded", pod["status"]
    proxy = next(s for s in pod["status"]["containerStatuses"] if s["name"] == "istio-proxy")
    assert proxy["state"]["terminated"]["exitCode"] == 0
    assert "the pod's mesh sidecar was asked to stop" in run.output
    assert "TLS verified against the pod's service account CA" in run.output
    assert run.scenarios.keys() == healthy.scenarios.keys() - {BUCKET_SCENARIO}
    not_passed = {n: r.outcome for n, r in run.scenarios.items() if r.outcome != "passed"}
    assert not_passed == dict.fromkeys(WRITING_SCENARIOS, "skipped"), run.output[-3000:]
    assert seen == {"system:serviceaccount:private-ai-demo:stagecheck-reader"}


def test_the_nightly_job_on_the_seed_incident_fails_for_the_stages_reason(
    seed_fault: Run,
) -> None:
    """The same Job on the seed's world: it fails because Llama Stack has no sidecar (the
    scenarios the sandbox target finds red, with the same cause), not because of its own
    access: everything it could check without writing passed."""
    job, run, _ = NIGHTLY["seed-no-sidecar"]
    assert run.returncode == 1 and job["pod"]["status"]["phase"] == "Failed"
    failed = {n for n, r in run.scenarios.items() if r.outcome == "failed"}
    assert failed == {
        make_python_name("Llama Stack is healthy and has the stage model registered"),
        make_python_name("Llama Stack runs with its mesh sidecar"),
    }, run.output[-3000:]
    registered = run.result("Llama Stack is healthy and has the stage model registered")
    assert "has no istio-proxy sidecar, so the mesh rejects its calls" in registered.message
    assert "could not be read" not in registered.message  # the reader role reads the evidence


def test_an_account_without_the_reader_role_fails_in_seconds_naming_the_permission(
    healthy: Run,
) -> None:
    run, _ = IN_CLUSTER["stage-runner-without-role"]
    account = "system:serviceaccount:private-ai-demo:stage-runner-without-role"
    red = [r for r in run.scenarios.values() if r.outcome in ("failed", "error")]
    assert red and all(f'User "{account}" cannot ' in r.message for r in red), run.output[-3000:]
    assert not [r for r in run.scenarios.values() if r.outcome == "passed"]
    assert run.seconds < 90  # every step fails at once: none waits out its budget


def test_milvus_down_through_a_port_forward_says_its_pod_is_not_ready(milvus_down: Run) -> None:
    result = FORWARDED["milvus-down"].result("Milvus stores and finds vectors")
    assert result.outcome == "failed"
    assert "Service private-ai-demo/milvus has no Ready pod to port-forward to" in result.message
    assert "(Running, not Ready)" in result.message, result.message


def test_the_seed_incident_turns_the_mesh_scenario_red_with_the_broken_link(
    seed_fault: Run,
) -> None:
    result = seed_fault.result("Llama Stack runs with its mesh sidecar")
    assert result.outcome == "failed"
    for fragment in [
        "lack container istio-proxy",
        "has containers [llamastack]",
        "Service Mesh 2.x rules (maistra.io ServiceMeshControlPlane v2 served)",
        "namespace private-ai-demo is a mesh member labelled maistra.io/member-of=istio-system",
        "created by the operator of LlamaStackDistribution llama-stack",
        "-> Deployment llama-stack -> LlamaStackDistribution llama-stack",
        'lacks sidecar.istio.io/inject: "true" (as a label or an annotation)',
        "ServiceMeshControlPlane istio-system/data-science-smcp has "
        "spec.proxy.injection.autoInject=false (unset; the default)",
        "evidence: owner chain",
    ]:
        assert fragment in result.message, result.message
    assert result.seconds < 30  # its budget is 2 minutes: a rolled-out workload will not change


def test_the_seed_incident_attaches_the_llama_stack_containers_log(seed_fault: Run) -> None:
    """As the seed's author read `oc logs`: the red mesh step carries the log of the pod it is
    about, served by the API server from the data plane's Llama Stack process."""
    scenario = "Llama Stack runs with its mesh sidecar"
    assert "container logs" in seed_fault.result(scenario).message  # listed with the evidence
    results = RUN_DIRS["seed-no-sidecar"] / "reports" / "allure-results"
    for path in results.glob("*-result.json"):
        result = json.loads(path.read_text())
        if result["name"] != scenario:
            continue
        found = result.get("attachments", []) + [
            a for step in result.get("steps", []) for a in step.get("attachments", [])
        ]
        (logs,) = [
            (results / a["source"]).read_text() for a in found if a["name"] == "container logs"
        ]
        first = logs.split("\n\n")[0].splitlines()
        assert first[0].startswith("== pod llama-stack-") and first[0].endswith(
            ", container llamastack"
        )
        # Llama Stack's own lines, as its process wrote them (not "(empty)", not an error)
        assert len(first) > 3 and not first[1].startswith("("), logs[:2000]
        return
    raise AssertionError(f"no Allure result for {scenario} in {results}")


def test_the_seed_incident_leaves_the_rest_of_the_mesh_green(seed_fault: Run) -> None:
    assert seed_fault.result("The mesh control plane is ready").outcome == "passed"
    assert (
        seed_fault.result(
            "The stage namespace is a member of the mesh, enrolled for injection"
        ).outcome
        == "passed"
    )


def test_milvus_down_turns_milvus_red_with_the_crash(milvus_down: Run) -> None:
    result = milvus_down.result("Milvus standalone is deployed and available")
    assert result.outcome == "failed"
    assert "Deployment private-ai-demo/milvus-standalone" in result.message
    assert "container milvus waiting: CrashLoopBackOff" in result.message
    assert "will not recover by waiting" in result.message
    assert result.seconds < 30


def test_the_seed_incident_says_why_the_model_is_not_usable(seed_fault: Run) -> None:
    result = seed_fault.result("Llama Stack is healthy and has the stage model registered")
    assert result.outcome == "failed"
    for fragment in [
        # The model as the InferenceService names it (the sandbox serves it under that name).
        "expected model mistral-24b-quantized from provider vllm-inference registered and "
        "answering",
        # The model's answer fails for real: the mesh gate resets the calls of a Llama Stack
        # whose pod the webhook left without a sidecar (no wiring fault makes it fail).
        "is listed, but a completion through it fails",
        "has no istio-proxy sidecar, so the mesh rejects its calls to the mTLS-only model",
        # ... and only because the evidence shows it: the Service is meshed and mTLS-only.
        "Service private-ai-demo/mistral-24b-quantized-predictor is in the mesh",
        "requires mTLS (ServiceMeshControlPlane istio-system/data-science-smcp "
        "spec.security.dataPlane.mtls: true)",
    ]:
        assert fragment in result.message, result.message
    assert seed_fault.result("A question is answered from ingested documents").outcome == "failed"
    assert seed_fault.result("Milvus stores and finds vectors").outcome == "passed"


def test_milvus_down_turns_exactly_milvus_and_what_needs_it_red(milvus_down: Run) -> None:
    """Milvus's process exits; Llama Stack, which needs its remote Milvus at start, exits too:
    both pods crash-loop through the data-plane kubelet, and only their scenarios are red."""
    failed = {n for n, r in milvus_down.scenarios.items() if r.outcome == "failed"}
    assert failed == {
        make_python_name(s)
        for s in (
            "Milvus standalone is deployed and available",
            "Milvus stores and finds vectors",
            "The Llama Stack distribution is ready",
            "Llama Stack is healthy and has the stage model registered",
            "A question is answered from ingested documents",
            "A question is answered from the documents of a folder",
        )
    }, milvus_down.output[-3000:]
    distribution = milvus_down.result("The Llama Stack distribution is ready")
    assert "container llamastack waiting: CrashLoopBackOff" in distribution.message
    assert distribution.seconds < 30  # its pod's crash-loop ends the 5-minute wait at once


def test_milvus_down_turns_the_vector_round_trip_red(milvus_down: Run) -> None:
    result = milvus_down.result("Milvus stores and finds vectors")
    assert result.outcome == "failed"
    assert "Milvus at http://127.0.0.1:" in result.message
    assert "does not answer" in result.message or "Milvus refused" in result.message, result.message


@pytest.fixture(scope="module")
def wrong_s3_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Run, Path]]:
    tmp = tmp_path_factory.mktemp("s3")
    for run in stage2_run(tmp, "dspa-wrong-credentials", keep_keys=True):
        yield run, tmp


@pytest.fixture(scope="module")
def pipelines_not_granted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("pipelines")
    yield from stage2_run(tmp, "pipelines-access-not-granted", extra=("-m", "pipelines"))


def test_a_workload_without_the_route_role_turns_the_pipelines_api_red_naming_it(
    pipelines_not_granted: Run,
) -> None:
    result = pipelines_not_granted.result("The pipelines API answers through its route")
    assert result.outcome == "failed"
    for fragment in [
        "pipelines API of DataSciencePipelinesApplication private-ai-demo/dspa",
        "HTTP 403: user system:serviceaccount:private-ai-demo:rag-workload-sa may not get",
        "ServiceAccount private-ai-demo/rag-workload-sa is authenticated but may not use the "
        "route; grant it the role ds-pipeline-user-access-dspa",
        # The world is RHOAI 2.25 (DSPO v2.17): the rule of its oauth-proxy, and where it was seen.
        "get on routes/ds-pipeline-dspa (route.openshift.io), which its oauth-proxy asks",
        "seen: container oauth-proxy of Deployment private-ai-demo/ds-pipeline-dspa",
    ]:
        assert fragment in result.message, result.message
    ready = pipelines_not_granted.result("The pipelines application and its components are ready")
    assert ready.outcome == "passed"


def test_a_wrong_s3_key_turns_the_bucket_check_red_without_showing_it(
    wrong_s3_key: tuple[Run, Path],
) -> None:
    run, tmp = wrong_s3_key
    result = run.result("The artifact bucket answers with the DSPA's credentials")
    assert result.outcome == "failed"
    assert "S3 bucket kfp-artifacts at http://127.0.0.1:" in result.message
    assert "authentication failed: SignatureDoesNotMatch" in result.message
    assert (
        "the keys in Secret private-ai-demo/dspa-minio-credentials are not accepted"
        in result.message
    )
    # DSPO v2.17 (controllers/storage.go): the operator's own StatObject with these keys fails,
    # so ObjectStoreAvailable is False, no component is deployed and the DSPA is not Ready.
    ready = run.result("The pipelines application and its components are ready")
    assert ready.outcome == "failed"
    assert "Could not connect to (minio.minio.svc.cluster.local:9000), Error:" in ready.message
    real_key = (tmp / "real-secret-key").read_text()
    for secret in (real_key, "not-the-key-the-store-knows"):
        assert secret not in run.output
        for path in (tmp / "reports").rglob("*"):
            if path.is_file():
                assert secret not in path.read_text(errors="replace"), path


def test_a_bucket_provisioned_by_a_scenario_is_removed_after_it(healthy: Run) -> None:
    assert healthy.result("A bucket is ensured for the length of the scenario").outcome == "passed"
    after = (RUN_DIRS["healthy"] / "buckets-after").read_text().split()
    assert after == ["kfp-artifacts"]


def test_the_reports_agree_with_a_red_run(seed_fault: Run) -> None:
    """The status page and JUnit of the seed incident say what the run found."""
    reports = RUN_DIRS["seed-no-sidecar"] / "reports"
    page = (reports / "stage2-status.md").read_text()
    failed = sorted(name for name, r in seed_fault.scenarios.items() if r.outcome == "failed")
    assert failed, seed_fault.output[-2000:]
    assert "| mesh | ❌" in page and "| llama-stack | ❌" in page and "| milvus | ✅" in page
    assert "lacks sidecar.istio.io/inject" in page
    junit = ET.parse(reports / "junit.xml").getroot()
    cases = list(junit.iter("testcase"))
    assert len(cases) == len(seed_fault.scenarios)
    assert sum(
        1 for c in cases if c.find("failure") is not None or c.find("error") is not None
    ) == len(failed)
    assert any(
        c.get("name")
        == "Service mesh: the stage's workloads talk to each other through the mesh > Llama Stack runs with its mesh sidecar"
        for c in cases
    )


# -- parallel runs (pytest -n 2, pytest-xdist): the serial runs above, again on two workers -----
def _parallel_parity(variant: str, serial: Run) -> None:
    """features/stage2 with -n 2 on the variant's sandbox, right after the serial run, gives
    its verdicts, JUnit cases, status page and terminal summary; no two scenarios create an
    object of the same name (from the API server's audit log)."""
    from tests.support import junit_cases, summary_of, without_timings

    tmp = RUN_DIRS[variant]
    plane = ControlPlane(ROOT, tmp / "plane", name=f"stagecheck-{variant}")
    parallel, beside = PARALLEL[variant]
    seconds = f"serial {serial.seconds:.1f} s, -n 2 {parallel.seconds:.1f} s\n"
    (beside / "seconds.txt").write_text(seconds)  # for the README's "when it helps"
    assert "created: 2/2 workers" in parallel.output, parallel.output[-3000:]
    assert parallel.returncode == serial.returncode
    verdicts = {n: r.outcome for n, r in serial.scenarios.items()}
    assert {n: r.outcome for n, r in parallel.scenarios.items()} == verdicts
    reports, serial_reports = beside / "reports", tmp / "reports"
    assert junit_cases(reports / "junit.xml") == junit_cases(serial_reports / "junit.xml")
    page, serial_page = (reports / "stage2-status.md"), (serial_reports / "stage2-status.md")
    assert without_timings(page.read_text()) == without_timings(serial_page.read_text())
    assert summary_of(parallel.output) == summary_of(serial.output)
    created = [_created(e) for e in audit_events(plane, run_id(parallel.output))]
    created = [c for c in created if c is not None]
    assert len(created) == len(set(created)), created


def _created(event: dict[str, object]) -> tuple[str, str, str] | None:
    """The object a create request of the audit log made: resource, namespace, name."""
    ref = event.get("objectRef")
    if event.get("verb") != "create" or event.get("stage") != "ResponseComplete":
        return None
    if not isinstance(ref, dict) or not ref.get("name") or ref.get("subresource"):
        return None  # a subresource (a TokenRequest, a port-forward) creates no object
    return str(ref.get("resource")), str(ref.get("namespace", "")), str(ref["name"])


def test_two_workers_give_the_serial_run_on_the_healthy_sandbox(healthy: Run) -> None:
    _parallel_parity("healthy", healthy)


def test_two_workers_give_the_serial_run_on_a_fault_variant(milvus_down: Run) -> None:
    # milvus-down, not the seed incident: its red scenarios fail in seconds, where the seed's
    # RAG scenarios wait out their model budgets twice over under two workers (8 minutes).
    _parallel_parity("milvus-down", milvus_down)


# -- the healthy sandbox obeys its world: live edits and a dying process ---------------------
# (last in the module: they change the healthy sandbox and give it back as it was)

SERVED_FEATURES = [
    str(ROOT / "features" / "stage2" / f) for f in ("llama-stack.feature", "model-serving.feature")
]
LLAMA_STACK_RED = {
    "Llama Stack is healthy and has the stage model registered",
    "A question is answered from ingested documents",
    "A question is answered from the documents of a folder",
}
EDITS = {  # fault variant -> (the object it changes, the scenarios it turns red, the cause)
    "vllm-url-nowhere": (
        "LlamaStackDistribution",
        LLAMA_STACK_RED,
        "VLLM_URL (LlamaStackDistribution llama-stack spec.server.containerSpec.env) is "
        "http://mistral-24b-predictor.private-ai-demo.svc.cluster.local/v1: no Service "
        '"mistral-24b-predictor" in namespace private-ai-demo',
    ),
    "served-name-mismatch": (
        "InferenceService",
        {*LLAMA_STACK_RED, "The model endpoint serves the model and answers"},
        "Llama Stack asks the model server for INFERENCE_MODEL (LlamaStackDistribution "
        "llama-stack spec.server.containerSpec.env) = 'mistral-24b-quantized', but the model "
        "server serves mistral-small-24b: the names differ",
    ),
    # kwok marks the new pod Ready at once, so the rollout removes the old pod before the
    # data-plane kubelet says the new one's process exits: the distribution is red too.
    "config-mounted-over-store": (
        "LlamaStackDistribution",
        {*LLAMA_STACK_RED, "The Llama Stack distribution is ready"},
        "the server cannot write /opt/app-root/src/.llama/distributions/rh/kvstore.db: that "
        'path is under the volume "config" (ConfigMap llamastack-config) that '
        "LlamaStackDistribution llama-stack spec.server.podOverrides.volumeMounts[0] mounts "
        "read-only at /opt/app-root/src/.llama/distributions/rh",
    ),
}
CRASH_LOOPING = {"config-mounted-over-store"}  # the edited pod never becomes Ready


def _healthy_plane() -> ControlPlane:
    return ControlPlane(ROOT, RUN_DIRS["healthy"] / "plane", name="stagecheck-healthy")


def _world_docs() -> list[dict[str, object]]:
    return load_documents(
        *sorted((ROOT / "stagecheck" / "sandbox" / "worlds" / "stage2").glob("*.yaml"))
    )


def _world_object(kind: str, fault: str | None) -> dict[str, object]:
    docs = _world_docs()
    if fault is not None:
        docs = FAULTS[fault].change_world(docs)
    return next(d for d in docs if d["kind"] == kind)


def _added_objects(fault: str) -> list[dict[str, object]]:
    """The documents the fault's change adds to the world (a ConfigMap it mounts)."""
    docs = _world_docs()
    known = {(d["kind"], d["metadata"]["name"]) for d in docs}
    changed = FAULTS[fault].change_world(docs)
    return [d for d in changed if (d["kind"], d["metadata"]["name"]) not in known]


def _rolled_out(
    plane: ControlPlane,
    selector: str,
    timeout_s: float = 120.0,
    other_than: str = "",
    crash_looping: bool = False,
) -> str:
    """Wait until one pod matches, Ready (and not the pod ``other_than``), and return its uid:
    a rollout has settled. ``crash_looping``: a new pod never becomes Ready, so wait until one
    other than ``other_than`` has a container the kubelet restarted (its log is served by then:
    the container-logs stand-in points kwok at it within seconds)."""
    kube = plane.connect()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pods = kube.get("/api/v1/namespaces/private-ai-demo/pods", {"labelSelector": selector})[
                "items"
            ]
            ready = [
                p for p in pods
                if any(c["type"] == "Ready" and c["status"] == "True"
                       for c in (p.get("status") or {}).get("conditions") or [])
            ]  # fmt: skip
            if len(pods) == 1 and ready and pods[0]["metadata"]["uid"] != other_than:
                return str(pods[0]["metadata"]["uid"])
            restarted = [
                p for p in pods
                if p["metadata"]["uid"] != other_than
                and any(c.get("restartCount")
                        for c in (p.get("status") or {}).get("containerStatuses") or [])
            ]  # fmt: skip
            if crash_looping and restarted:
                return str(restarted[0]["metadata"]["uid"])
            time.sleep(1)
        raise AssertionError(f"no single Ready pod {selector} within {timeout_s}s: {pods}")
    finally:
        kube.close()


SELECTORS = {
    "LlamaStackDistribution": "app=llama-stack",
    "InferenceService": "serving.kserve.io/inferenceservice=mistral-24b-quantized",
}


@pytest.mark.parametrize("fault", sorted(EDITS))
def test_a_gitops_edit_of_the_world_turns_the_right_scenarios_red_and_back(
    healthy: Run, fault: str, tmp_path: Path
) -> None:
    """The fault's change applied to the running healthy sandbox (as a GitOps sync would): the
    operator's stand-in rolls the pod out, the data-plane kubelet starts the process from the
    new pod, and exactly the scenarios that depend on it turn red, with the cause read from
    the object; the world given back (what the fault added deleted), green again."""
    kind, red, cause = EDITS[fault]
    plane = _healthy_plane()
    before = _rolled_out(plane, SELECTORS[kind])
    added = _added_objects(fault)
    kube = plane.connect()
    try:
        apply_documents(kube, [*added, _world_object(kind, fault)])
        crashing = fault in CRASH_LOOPING  # the new spec runs (and its process may exit)
        edited = _rolled_out(plane, SELECTORS[kind], other_than=before, crash_looping=crashing)
        if kind == "InferenceService":  # Llama Stack's calls reach the restarted model server
            _rolled_out(plane, SELECTORS["LlamaStackDistribution"])
        args = ["--target", "sandbox", "--kubeconfig", str(plane.kubeconfig), "--no-preflight-stop"]
        broken = run_pytest([*args, *SERVED_FEATURES], _fresh(tmp_path / "broken"))
        failed = {n for n, r in broken.scenarios.items() if r.outcome == "failed"}
        assert failed == {make_python_name(s) for s in red}, broken.output[-3000:]
        registered = broken.result("Llama Stack is healthy and has the stage model registered")
        assert cause in registered.message, registered.message
        if fault in CRASH_LOOPING:  # every red scenario says why the server does not answer
            for scenario in red:
                assert cause in broken.result(scenario).message, (scenario, broken.output[-3000:])
    finally:
        apply_documents(kube, [_world_object(kind, None)])  # given back, whatever happened
        for doc in added:  # core objects (a ConfigMap): their path is their kind's plural
            path = f"/api/v1/namespaces/private-ai-demo/{str(doc['kind']).lower()}s"
            kube.delete(f"{path}/{doc['metadata']['name']}")
        kube.close()
    _rolled_out(plane, SELECTORS[kind], other_than=edited)
    _rolled_out(plane, SELECTORS["LlamaStackDistribution"])
    again = run_pytest([*args, *SERVED_FEATURES], _fresh(tmp_path / "restored"))
    assert again.returncode == 0, again.output[-3000:]


def test_a_killed_milvus_process_crash_loops_its_pod_until_the_kubelet_restarts_it(
    healthy: Run, tmp_path: Path
) -> None:
    """Nothing writes the pod's status but the data-plane kubelet, from the process: killed, the
    pod is not Ready and in CrashLoopBackOff (exit 137 recorded), the smoke scenario red; after
    the kubelet's 10 s back-off it runs again, restartCount 1, and the scenario is green."""
    import os
    import signal

    from stagecheck.sandbox.dataplane.supervisor import Supervisor

    plane = _healthy_plane()
    _rolled_out(plane, "app=milvus")
    supervisor = Supervisor(plane.state / "dataplane")
    record = supervisor.records()["milvus"]
    server = [pid for pid in supervisor.members(record) if pid != record["pid"]]
    assert server, "the milvus-lite server runs under its exit recorder"
    for pid in server:
        os.kill(pid, signal.SIGKILL)
    kube = plane.connect()
    try:
        deadline, seen = time.monotonic() + 10, {}
        while time.monotonic() < deadline:
            pod = kube.get(
                "/api/v1/namespaces/private-ai-demo/pods", {"labelSelector": "app=milvus"}
            )["items"][0]
            seen = next(s for s in pod["status"]["containerStatuses"] if s["name"] == "milvus")
            if "waiting" in seen["state"]:
                break
            time.sleep(0.2)
        assert seen["state"]["waiting"]["reason"] == "CrashLoopBackOff", seen
        assert (
            "back-off 10s restarting failed container=milvus" in seen["state"]["waiting"]["message"]
        )
        assert seen["lastState"]["terminated"]["exitCode"] == 137 and not seen["ready"]
    finally:
        kube.close()
    args = ["--target", "sandbox", "--kubeconfig", str(plane.kubeconfig), "--no-preflight-stop"]
    milvus = [str(ROOT / "features" / "stage2" / "milvus.feature")]
    red = run_pytest([*args, *milvus], _fresh(tmp_path / "killed"))
    smoke = red.result("Milvus standalone is deployed and available")
    assert smoke.outcome == "failed" and "CrashLoopBackOff" in smoke.message, smoke.message
    _rolled_out(plane, "app=milvus", timeout_s=60)
    green = run_pytest([*args, *milvus], _fresh(tmp_path / "restarted"))
    assert green.returncode == 0, green.output[-3000:]
    kube = plane.connect()
    try:
        pod = kube.get("/api/v1/namespaces/private-ai-demo/pods", {"labelSelector": "app=milvus"})[
            "items"
        ][0]
        milvus = next(s for s in pod["status"]["containerStatuses"] if s["name"] == "milvus")
        assert milvus["restartCount"] == 1
    finally:
        kube.close()
