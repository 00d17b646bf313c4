"""Bad input gets one clear error, quickly, and no scenario runs against nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stagecheck.sandbox.controlplane import ControlPlane
from tests.support import ROOT, run_pytest, token_kubeconfig

FEATURE = str(ROOT / "tests" / "features" / "kubernetes" / "namespaces.feature")


def kubeconfig(path: Path, server: str, contexts: dict[str, str], current: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "canary-token-value"}}],
                "contexts": [
                    {"name": n, "context": {"cluster": c, "user": "u"}} for n, c in contexts.items()
                ],
                "current-context": current,
            }
        )
    )
    return path


def test_no_sandbox_running_says_how_to_start_it_once(tmp_path: Path) -> None:
    run = run_pytest(
        [FEATURE], tmp_path, env={"STAGECHECK_SANDBOX_DIR": str(tmp_path / "no-sandbox")}
    )
    assert run.returncode == 3
    assert run.output.count("the sandbox control plane is not running") == 1, run.output
    assert "scripts/control-plane up" in run.output
    assert "Traceback" not in run.output
    assert not any(r.outcome == "passed" for r in run.scenarios.values())


def test_an_unreachable_cluster_is_one_sentence(tmp_path: Path) -> None:
    config = kubeconfig(tmp_path / "kc", "https://127.0.0.1:1", {"dev": "c"}, "dev")
    run = run_pytest([FEATURE, "--target", "cluster:dev", "--kubeconfig", str(config)], tmp_path)
    assert run.returncode == 3
    assert "target 'cluster:dev' (cluster: context 'dev'" in run.output
    assert "is unreachable at https://127.0.0.1:1" in run.output
    assert "canary-token-value" not in run.output


def test_a_context_missing_from_the_kubeconfig_lists_those_present(tmp_path: Path) -> None:
    config = kubeconfig(tmp_path / "kc", "https://127.0.0.1:1", {"dev": "c", "prod": "c"}, "dev")
    run = run_pytest(
        [FEATURE, "--target", "cluster:staging", "--kubeconfig", str(config)], tmp_path
    )
    assert run.returncode == 3
    assert "context 'staging' is not in" in run.output
    assert "contexts there: dev, prod" in run.output


def test_a_kubeconfig_that_does_not_exist_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    run = run_pytest([FEATURE, "--target", "kind", "--kubeconfig", str(missing)], tmp_path)
    assert run.returncode == 3
    assert f"kubeconfig {missing} does not exist" in run.output


def test_an_unknown_target_is_a_usage_error(tmp_path: Path) -> None:
    run = run_pytest([FEATURE, "--target", "prod"], tmp_path)
    assert run.returncode == 4
    assert "stagecheck: unknown target 'prod'" in run.output


def test_a_malformed_feature_names_file_and_line(tmp_path: Path) -> None:
    run = run_pytest([str(ROOT / "tests/features/bad/malformed.feature")], tmp_path)
    assert run.returncode == 2
    assert (
        "malformed.feature:5: not valid Gherkin: Unexpected token found: 'this line has no keyword'"
        in run.output
    )
    assert "Traceback" not in run.output


def test_an_unknown_step_fails_its_scenario_with_the_step(tmp_path: Path) -> None:
    run = run_pytest([str(ROOT / "tests/features/bad/unknown_step.feature")], tmp_path)
    result = run.result("A misspelled step")
    assert result.outcome == "failed"
    # The lint's words and help, at run time too: the file:line and the closest sentences.
    assert (
        "undefined step: Then the stage namespace exist  (bad/unknown_step.feature:4)"
        in result.message
    ), result.message
    assert "did you mean: the stage namespace exists [within <within>]" in result.message


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ("{token: canary-token-value", "is not valid YAML at line "),  # the file's text unshown
        ("[canary-token-value]", "users[u].user.token must be a string (it is a list)"),
    ],
)
def test_a_broken_kubeconfig_is_one_sentence_without_its_contents(
    tmp_path: Path, broken: str, expected: str
) -> None:
    config = kubeconfig(tmp_path / "kc", "https://127.0.0.1:1", {"dev": "c"}, "dev")
    config.write_text(config.read_text().replace("canary-token-value", broken, 1))
    run = run_pytest([FEATURE, "--target", "cluster:dev", "--kubeconfig", str(config)], tmp_path)
    assert run.returncode == 3
    assert f"stagecheck: kubeconfig {config}" in run.output and expected in run.output
    assert "Traceback" not in run.output and "canary-token-value" not in run.output


def test_an_insecure_cluster_is_said_loudly_in_the_run_header(tmp_path: Path) -> None:
    config = kubeconfig(tmp_path / "kc", "https://127.0.0.1:1", {"dev": "c"}, "dev")
    config.write_text(
        config.read_text().replace("server:", "insecure-skip-tls-verify: true\n    server:")
    )
    run = run_pytest([FEATURE, "--target", "cluster:dev", "--kubeconfig", str(config)], tmp_path)
    assert (
        "stagecheck: https://127.0.0.1:1 as the token of user 'u'; TLS NOT VERIFIED" in run.output
    )
    assert "stagecheck: WARNING: TLS NOT VERIFIED: insecure-skip-tls-verify is set" in run.output


def test_a_refused_token_is_one_sentence_and_reaches_no_report(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    canary = "canary-token-5e8b"
    config = token_kubeconfig(control_plane, tmp_path / "kc", {"token": canary})
    context = yaml.safe_load(config.read_text())["current-context"]
    run = run_pytest(
        [FEATURE, "--target", f"cluster:{context}", "--kubeconfig", str(config)], tmp_path
    )
    assert run.returncode == 3
    assert "stagecheck: the API server did not accept the token of user 'token-user' " in run.output
    assert (
        f"(context '{context}' of {config}; HTTP 401 on GET /version): log in again" in run.output
    )
    assert "Traceback" not in run.output and canary not in run.output
    written = [p for p in (tmp_path / "reports").rglob("*") if p.is_file()]
    assert not [p for p in written if canary in p.read_text(errors="replace")]
