"""No secret reaches any output: the redaction rules one by one, then canary values planted in
the world (a Secret, a ConfigMap, a pod's env, args and annotation, a custom resource's env, a
.env file) looked for in everything a red and a green run leave: the terminal under
``--tb=long``, JUnit, the status page, Allure's results and attachments."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml
from pytest_bdd.scenario import make_python_name

from stagecheck import redaction
from stagecheck.engine.checks import matches
from stagecheck.engine.evidence import object_yaml
from stagecheck.engine.s3 import Credentials, _failure
from stagecheck.kube.client import Kube
from stagecheck.redaction import REDACTED, redact_object, redact_text, remember
from stagecheck.sandbox.controlplane import ControlPlane
from tests.support import ROOT, Run, run_pytest

PLAIN_CANARIES = [  # in the cluster's objects or a .env file: never in any output
    "canary-secret-8c1f2e",  # a Secret's value (world.yaml), also in minio.env
    "canary-url-5d2a",  # a ConfigMap's URL userinfo
    "canary-config-9e41",  # a ConfigMap's value
    "canary-annotation-3c07",  # a URL's password in an annotation
    "canary-arg-4f88",  # a container argument
    "canary-env-7b13",  # an env value whose name gives nothing away
    "canary-crenv-61d9",  # a custom resource's env, as a LlamaStackDistribution's
    "minio-canary-access",  # a .env value, shown by --tb=long as a step's argument
    "canary-event-1e5f",  # a URL's password in an event's message (events evidence)
]
CANARIES = PLAIN_CANARIES + [base64.b64encode(c.encode()).decode() for c in PLAIN_CANARIES]
# What the feature expects of those fields: the feature shows them (Allure lists a step's
# docstring, --tb=long its arguments), a diff never does.
EXPECTED = ["Y2FuYXJ5LWV4cGVjdGVkLTJiOTA=", "canary-expected-c3d4", "canary-crexpected-7a2b"]
FEATURE = ROOT / "tests/features/redaction/canaries.feature"


# -- the rules ------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """What this process remembered in other tests (a kubeconfig's token "secret", say) would
    be cut here too: each rule is tested against a run that has met no secret yet."""
    monkeypatch.setattr(redaction, "_known", redaction._Known())


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Authorization: Bearer abcdefghijkl12345", "Authorization: <redacted>"),
        ("{'Authorization': 'Bearer abcdefghijkl12345'}", "{'Authorization': '<redacted>'}"),
        ("curl -H 'authorization: token abcdefgh'", "curl -H 'authorization: <redacted>'"),
        ("sends Bearer eyJhbGciOi.payload", "sends Bearer <redacted>"),
        ("https://user:p4ss@host.example.com/x", "https://<redacted>@host.example.com/x"),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", "AWS_SECRET_ACCESS_KEY=<redacted>"),
        ("run --db-password=hunter22 now", "run --db-password=<redacted> now"),
        ("key id AKIAIOSFODNN7EXAMPLE", "key id <redacted>"),
        ('"password": "hunter22"', '"password": "<redacted>"'),
        ("token: sha256~abcdefghijklmnopqrstuvwxyz0", "token: <redacted>"),
        ("-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----", REDACTED),
    ],
)
def test_a_credential_is_known_by_its_shape(text: str, shown: str) -> None:
    assert redact_text(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        'the Secret "minio-credentials" has no key password',
        "secretName: minio-connection",
        "http://127.0.0.1:8080/v1/models@latest",
        "a bearer token from the kubeconfig; the route's proxy authorises verb api",
        "data.AWS_SECRET_ACCESS_KEY: differs from the value written",
        "secret = run.result(name)",
        "token: expired",
    ],
)
def test_words_about_credentials_are_left_alone(text: str) -> None:
    assert redact_text(text) == text


def test_a_remembered_value_goes_in_its_plain_and_base64_forms() -> None:
    remember("remembered-4a1c value")
    encoded = base64.b64encode(b"remembered-4a1c value").decode()
    assert redact_text(f"found {encoded} and 'remembered-4a1c value'") == (
        f"found {REDACTED} and '{REDACTED}'"
    )


def test_every_value_of_a_secret_the_api_returns_is_remembered() -> None:
    value = base64.b64encode(b"listed-9f3e-value").decode()
    redaction.remember_secret_object(
        {"kind": "SecretList", "items": [{"metadata": {"name": "s"}, "data": {"k": value}}]}
    )
    assert redact_text("the log says listed-9f3e-value") == f"the log says {REDACTED}"


def test_values_too_short_to_tell_from_words_are_not_cut_from_text() -> None:
    remember("true")
    assert redact_text("ready: true") == "ready: true"


LLSD = {  # as the Llama Stack operator's CRD has it
    "apiVersion": "llamastack.io/v1alpha1",
    "kind": "LlamaStackDistribution",
    "metadata": {"name": "llama-stack", "namespace": "ns"},
    "spec": {
        "server": {
            "distribution": {"name": "rh-dev"},
            "containerSpec": {"env": [{"name": "VLLM_URL", "value": "llsd-env-value"}]},
        }
    },
}
ISVC = {  # as KServe's InferenceService has it
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "model", "namespace": "ns"},
    "spec": {
        "predictor": {
            "model": {
                "modelFormat": {"name": "vLLM"},
                "args": ["--served-model-name=model", "--api-key", "isvc-arg-value"],
                "env": [{"name": "HF_TOKEN", "value": "isvc-env-value"}],
            }
        }
    },
}
PROBE_POD = {  # the mesh probe's pod, as it is attached to a red step
    "kind": "Pod",
    "metadata": {"name": "probe", "annotations": {"sidecar.istio.io/inject": "true"}},
    "spec": {
        "containers": [
            {
                "name": "probe",
                "command": ["curl"],
                "args": ["-H", "Authorization: Bearer probe-token-value", "http://svc"],
                "env": [{"name": "MODE", "value": "probe-env-value"}],
            }
        ]
    },
}


@pytest.mark.parametrize(
    ("obj", "hidden", "kept"),
    [
        (LLSD, ["llsd-env-value"], ["VLLM_URL", "rh-dev"]),
        (ISVC, ["isvc-arg-value", "isvc-env-value"], ["--api-key", "--served-model-name="]),
        (PROBE_POD, ["probe-token-value", "probe-env-value"], ["MODE", "sidecar.istio.io"]),
        (
            {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"uri": "cm-value"}},
            ["cm-value"],
            ["uri"],
        ),
        (
            {"kind": "Secret", "metadata": {"name": "s"}, "stringData": {"password": "s-value"}},
            ["s-value"],
            ["password"],
        ),
    ],
)
def test_an_object_shown_whole_keeps_names_and_loses_values(
    obj: dict[str, object], hidden: list[str], kept: list[str]
) -> None:
    shown = object_yaml(obj).text
    for value in hidden:
        assert value not in shown
    for name in kept:
        assert name in shown
    assert redact_object(obj) != obj  # and the object itself is untouched
    assert yaml.safe_load(shown)["kind"] == obj["kind"]


def test_a_diff_of_a_custom_resource_env_says_it_differs() -> None:
    expected = {
        "spec": {"server": {"containerSpec": {"env": [{"name": "VLLM_URL", "value": "other"}]}}}
    }
    observation = matches(LLSD, expected)
    assert not observation.ok
    assert "differs from the value written (values of this field are not shown)" in (
        observation.actual
    )
    assert "llsd-env-value" not in observation.actual and "other" not in observation.actual


def test_a_refused_s3_key_is_not_named() -> None:
    from minio.error import S3Error

    error = S3Error(None, "InvalidAccessKeyId", "no such key", "b", "r", "h")  # type: ignore[arg-type]
    failure = _failure(
        "bucket b",
        "to answer",
        error,
        Credentials("s3-key-id-value", "s3-secret-value", "Secret ns/dspa"),
    )
    assert "InvalidAccessKeyId" in str(failure) and "Secret ns/dspa" in str(failure)
    assert "s3-key-id-value" not in str(failure)


# -- canaries through whole runs ------------------------------------------------------------------
@pytest.fixture(scope="module")
def canary_runs(
    world: Kube, control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> list[tuple[Run, Path]]:
    """The canary feature twice, serially under --tb=long and on two workers, plus the .env
    scenario whose step arguments --tb=long prints."""
    runs = []
    for name, extra in (("serial", ["--tb=long", "-rA"]), ("workers", ["-n", "2"])):
        tmp = tmp_path_factory.mktemp(f"redaction-{name}")
        args = [
            *("--target", "sandbox", "--kubeconfig", str(control_plane.kubeconfig)),
            f"--alluredir={tmp / 'allure-results'}",
            *extra,
            str(FEATURE),
            str(ROOT / "tests/features/provisioning/provisioning.feature"),
            "-k",
            "secrets or diff or evidence or green or credential",
        ]
        runs.append((run_pytest(args, tmp), tmp))
    return runs


def test_the_canary_runs_are_red_where_they_should_be(
    canary_runs: list[tuple[Run, Path]],
) -> None:
    for run, _ in canary_runs:
        assert run.result("A green step on the same Secret").outcome == "passed", run.output
        for red in (
            "A Secret's diff says which key differs, not what either side holds",
            "A ConfigMap's diff shows no value",
            "A pod's evidence shows no env, argument or URL credential",
            "A custom resource's env is not shown in its diff",
            "A missing credential is named and no value is shown",
        ):
            assert run.result(red).outcome == "failed", (red, run.output)
    _, (workers, _) = canary_runs  # --tb=auto there: a red step's report is its message
    for red in ("A Secret's diff", "A ConfigMap's diff", "A custom resource's env"):
        message = next(
            r.message for n, r in workers.scenarios.items() if n.startswith(make_python_name(red))
        )
        assert "(values of this field are not shown)" in message
        assert not [v for v in EXPECTED if v in message], message
    for run, _ in canary_runs:
        secret = run.result("A Secret's diff says which key differs, not what either side holds")
        assert "data.AWS_SECRET_ACCESS_KEY: differs from the value written" in secret.message


def test_no_canary_in_the_terminal_or_any_report(canary_runs: list[tuple[Run, Path]]) -> None:
    for run, folder in canary_runs:
        assert "minio-credentials" in run.output  # the output is there, and names the Secret
        assert "(values of this field are not shown)" in run.output
        leaks = [c for c in CANARIES if c in run.output]
        assert not leaks, (leaks, run.output)
        files = [p for p in folder.rglob("*") if p.is_file()]
        assert any(p.name.endswith("-attachment.yaml") for p in files)
        assert any(p.name == "junit.xml" for p in files)
        assert any("-evidence" in str(p) and p.name == "events.txt" for p in files), files
        for path in files:
            text = path.read_text(errors="replace")
            leaks = [c for c in CANARIES if c in text]
            assert not leaks, (path, leaks)


def test_a_secret_one_worker_read_is_cut_from_another_workers_report(
    world: Kube, control_plane: ControlPlane, tmp_path: Path
) -> None:
    """Under -n 2 each file goes to its own worker (--dist loadfile): one reads the Secret,
    the other's red step prints its value (written into the feature) three seconds later.
    The controller prints the second worker's report, knowing the first worker's secrets."""
    path = "/api/v1/namespaces/private-ai-demo/secrets/worker-canary"
    world.apply(
        path,
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "worker-canary"},
         "stringData": {"token": "canary-worker-2f7a"}},
    )  # fmt: skip
    try:
        run = run_pytest(
            [*("--target", "sandbox", "--kubeconfig", str(control_plane.kubeconfig)),
             "-n", "2", "--dist", "loadfile", "-rA", "--tb=long",
             str(ROOT / "tests/features/redaction/workers")],
            tmp_path,
        )  # fmt: skip
    finally:
        world.delete(path)
    assert run.result("The worker's Secret is read").outcome == "passed", run.output
    red = run.result("A value written into the feature is printed by its red step")
    assert red.outcome == "failed", run.output
    assert 'label "team"' in run.output or "label team" in run.output, run.output[-3000:]
    assert "canary-worker-2f7a" not in run.output, run.output[-3000:]
