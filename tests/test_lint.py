"""Feature lint finds undefined and ambiguous steps and bad arguments, with file:line."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from stagecheck.kube.client import Kube
from stagecheck.sandbox.controlplane import ControlPlane
from tests.support import ROOT, run_pytest

LINT = ROOT / "scripts" / "lint-features"


def lint(*paths: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), *map(str, paths)], cwd=ROOT, capture_output=True, text=True)


def test_the_shipped_features_are_clean() -> None:
    result = lint(
        ROOT / "features", ROOT / "tests" / "features" / "kubernetes" / "workloads.feature"
    )
    assert result.returncode == 0, result.stdout
    assert " 0 problems" in result.stdout


def test_an_undefined_step_is_named_with_its_line_and_closest_definition() -> None:
    result = lint("tests/features/bad/unknown_step.feature")
    assert result.returncode == 1
    assert (
        "tests/features/bad/unknown_step.feature:4: undefined step: Then the stage namespace exist\n"
        in result.stdout
    )
    assert "did you mean: the stage namespace exists [within <within>]" in result.stdout


def test_malformed_gherkin_is_named_with_its_line() -> None:
    result = lint("tests/features/bad/malformed.feature")
    assert result.returncode == 1
    assert "malformed.feature:5: not valid Gherkin" in result.stdout


def test_an_unreadable_duration_is_caught_before_any_run() -> None:
    result = lint("tests/features/kubernetes/objects.feature")
    assert result.returncode == 1
    assert "objects.feature:34: bad argument" in result.stdout
    assert "'30 parsecs' is not a duration" in result.stdout


def test_an_ambiguous_step_names_both_definitions(tmp_path: Path) -> None:
    steps = tmp_path / "steps"
    steps.mkdir()
    (steps / "__init__.py").write_text("")
    (steps / "a.py").write_text(
        "from pytest_bdd import parsers, step\n"
        "@step(parsers.re(r'the (?P<thing>\\w+) is green'))\ndef first(thing): pass\n"
        "@step('the lamp is green')\ndef second(): pass\n"
    )
    feature = tmp_path / "lamp.feature"
    feature.write_text("Feature: Lamp\n  Scenario: Green\n    Then the lamp is green\n")
    result = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "python"),
            "-m",
            "stagecheck.lint",
            "--root",
            str(tmp_path),
            str(feature),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "lamp.feature:3: ambiguous step: Then the lamp is green matches\n" in result.stdout
    assert f"    steps.a.first ({steps / 'a.py'}:2)\n" in result.stdout
    assert f"    steps.a.second ({steps / 'a.py'}:4)" in result.stdout


def test_a_teams_conftest_step_overlapping_a_built_in_one_is_ambiguous(tmp_path: Path) -> None:
    """A run would take the conftest's step, which checks nothing, and stay green: the lint
    loads the conftest files a run of the feature would load, and names both definitions."""
    (tmp_path / "conftest.py").write_text(
        "from pytest_bdd import then\n@then('the stage namespace exists')\ndef looks_fine(): pass\n"
    )
    feature = tmp_path / "stage.feature"
    feature.write_text("Feature: Stage\n  Scenario: Ns\n    Then the stage namespace exists\n")
    result = lint(feature)
    assert result.returncode == 1, result.stdout
    assert "stage.feature:3: ambiguous step: Then the stage namespace exists matches" in (
        result.stdout
    )
    assert "steps.kubernetes.stage_namespace_exists (" in result.stdout
    assert f"looks_fine ({tmp_path / 'conftest.py'}:2)" in result.stdout


def test_a_path_without_features_is_an_error(tmp_path: Path) -> None:
    result = lint(tmp_path)
    assert result.returncode == 1
    assert "no .feature file" in result.stdout


def test_a_step_that_changes_the_cluster_is_never_a_check() -> None:
    result = lint("tests/features/bad/write_as_check.feature")
    assert result.returncode == 1
    assert (
        'write_as_check.feature:4: misplaced step: Then the manifests in "tests/features/'
        'provisioning/slow" are applied is a Given or When step: a step that changes the '
        "cluster sets the scenario up (Given, When); a Then only checks"
    ) in result.stdout


def test_a_malformed_duration_is_named_as_such_not_as_an_undefined_step(tmp_path: Path) -> None:
    feature = tmp_path / "ish.feature"
    feature.write_text(
        "Feature: f\n\n  Scenario: s\n    Then the stage namespace exists within 5 minutes-ish\n"
    )
    result = lint(feature)
    assert result.returncode == 1
    assert "ish.feature:4: bad argument" in result.stdout
    assert "'5 minutes-ish' is not a duration" in result.stdout


SPELLED = """Feature: Kinds
  Scenario: Spelled as served, and not
    Then the Deployment "anything" exists
    And the wdg "anything" exists
    And the Deploymnet "anything" exists
    And the Widget.example.com "anything" exists
    And the InferenceService "anything" exists
"""


def test_with_the_kinds_a_run_saw_an_unserved_kind_is_named_without_a_cluster(
    world: Kube, control_plane: ControlPlane, tmp_path: Path
) -> None:
    """Every run saves the kinds its cluster serves among its reports; the lint, given them,
    names a kind the cluster does not serve, with the closest it does, as a run would."""
    run = run_pytest(
        ["--target", "sandbox", "--kubeconfig", str(control_plane.kubeconfig),
         "tests/features/kubernetes/objects.feature", "-k", "spelled_the_way_kubectl"],
        tmp_path,
    )  # fmt: skip
    saved = tmp_path / "reports" / "served-kinds.json"
    assert saved.is_file(), run.output[-2000:]
    feature = tmp_path / "kinds.feature"
    feature.write_text(SPELLED)
    result = lint("--kinds", saved, feature)
    assert result.returncode == 1, result.stdout
    problems = [line for line in result.stdout.splitlines() if "kinds.feature:" in line]
    assert [p.split(":")[1] for p in problems] == ["5", "6", "7"], result.stdout
    assert "unknown kind in And the Deploymnet" in problems[0]
    assert "closest served: Deployment (apps/v1)" in problems[0]
    assert "Widget is served as Widget.stagecheck.example.com/v1" in problems[1]
    assert "the cluster serves no kind 'InferenceService'" in problems[2]
    assert f"kinds as in {saved}, 3 problems" in result.stdout


def test_kubectl_api_resources_output_serves_as_the_kinds(
    world: Kube, control_plane: ControlPlane, tmp_path: Path
) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("no kubectl on PATH")
    listed = subprocess.run(
        [kubectl, "--kubeconfig", str(control_plane.kubeconfig), "api-resources", "-o", "wide"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    (tmp_path / "kinds.txt").write_text(listed.stdout)
    feature = tmp_path / "kinds.feature"
    feature.write_text(SPELLED)
    result = lint("--kinds", tmp_path / "kinds.txt", feature)
    assert result.stdout.count("unknown kind in") == 3, result.stdout


def test_unreadable_kinds_are_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "kinds.txt").write_text("not a catalogue\n")
    result = lint("--kinds", tmp_path / "kinds.txt", "features")
    assert result.returncode == 2
    assert result.stdout.startswith(f"lint-features: --kinds {tmp_path / 'kinds.txt'}: cannot")
    assert "Traceback" not in result.stdout + result.stderr
