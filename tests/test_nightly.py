"""The nightly workflow's run step (scripts/nightly) against the test control plane: the job
summary it writes, the annotations it prints, the Allure history it carries between nights,
and the workflows themselves, linted."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from stagecheck.reporting.github import annotation_lines
from stagecheck.sandbox.controlplane import ControlPlane
from tests.support import ROOT, linters_bin

FEATURE = "tests/features/kubernetes/namespaces.feature"


def nightly(plane: ControlPlane, tmp: Path, night: str) -> subprocess.CompletedProcess[str]:
    context = yaml.safe_load(plane.kubeconfig.read_text())["current-context"]
    env = {
        **os.environ,
        "NIGHTLY_KUBECONFIG": plane.kubeconfig.read_text(),  # as the repository secret holds it
        "STAGECHECK_TARGET": f"cluster:{context}",
        "NIGHTLY_SITE": str(tmp / "site"),
        "GITHUB_STEP_SUMMARY": str(tmp / f"summary-{night}.md"),
        "STAGECHECK_REPORTS": str(tmp / f"reports-{night}"),
        "STAGECHECK_CACHE": os.environ.get(
            "STAGECHECK_CACHE", str(Path.home() / ".cache/stagecheck")
        ),
    }
    return subprocess.run(
        [str(ROOT / "scripts" / "nightly"), FEATURE, "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.fixture(scope="module")
def two_nights(
    world: object, control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[subprocess.CompletedProcess[str]]]:
    tmp = tmp_path_factory.mktemp("nightly")
    return tmp, [nightly(control_plane, tmp, night) for night in ("first", "second")]


def test_a_red_night_exits_red_and_annotates_each_red_scenario(
    two_nights: tuple[Path, list[subprocess.CompletedProcess[str]]],
) -> None:
    _, (first, _) = two_nights
    assert first.returncode == 1, first.stdout[-2000:] + first.stderr[-2000:]
    errors = [line for line in first.stdout.splitlines() if line.startswith("::error ")]
    assert len(errors) == 3  # the namespaces feature's three scenarios that must be red
    assert any(
        "file=tests/features/kubernetes/namespaces.feature,line=" in line
        and "title=kubernetes.namespaces%3A Namespace steps > A namespace that does not exist::"
        in line
        for line in errors
    ), errors
    assert "[nightly] verdict: exit status 1" in first.stdout


def test_the_job_summary_is_the_status_page(
    two_nights: tuple[Path, list[subprocess.CompletedProcess[str]]],
) -> None:
    tmp, _ = two_nights
    summary = (tmp / "summary-first.md").read_text()
    assert summary.startswith("# Stage status: kubernetes")
    assert summary == (tmp / "reports-first" / "kubernetes-status.md").read_text() + "\n"


def test_the_allure_history_is_carried_from_night_to_night(
    two_nights: tuple[Path, list[subprocess.CompletedProcess[str]]],
) -> None:
    tmp, (_, second) = two_nights
    assert (tmp / "site" / "index.html").exists(), second.stderr[-2000:]
    history = (tmp / "site" / "history.jsonl").read_text().splitlines()
    assert len(history) == 2  # each night's run, the second report shows the trend of both
    assert all(json.loads(line) for line in history)


def test_no_credential_is_left_behind_or_printed(
    two_nights: tuple[Path, list[subprocess.CompletedProcess[str]]], control_plane: ControlPlane
) -> None:
    tmp, nights = two_nights
    key = Path(
        yaml.safe_load(control_plane.kubeconfig.read_text())["users"][0]["user"]["client-key"]
    )
    secret = key.read_text().splitlines()[1]  # a line of the client key's material
    for night in nights:
        assert secret not in night.stdout + night.stderr
    written = [p for p in tmp.rglob("*") if p.is_file()]
    assert not [p for p in written if secret in p.read_text(errors="replace")]
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("stagecheck-nightly.*"))


def test_annotations_escape_what_github_would_misread(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<testsuites><testsuite name="s"><testcase classname="stage2.mesh" name="a: b, c" '
        'file="f.feature" line="4"><failure message="100% wrong&#10;second line"/></testcase>'
        '<testcase classname="stage2.milvus" name="m" file="g.feature" line="2">'
        '<error message="unreachable"/></testcase></testsuite></testsuites>'
    )
    assert annotation_lines(junit) == [
        "::error file=f.feature,line=4,title=stage2.mesh%3A a%3A b%2C c::100%25 wrong%0Asecond line",
        "::warning file=g.feature,line=2,title=stage2.milvus%3A m::unreachable",
    ]


def test_the_workflows_pass_actionlint_and_shellcheck() -> None:
    linters = linters_bin()
    done = subprocess.run(
        [f"{linters}/actionlint", "-no-color", *map(str, (ROOT / ".github/workflows").glob("*.yml"))],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    broken = ROOT / ".github" / "workflows" / "nightly.yml"
    bad = broken.read_text().replace("inputs.features", "inputs.featurez")
    done = subprocess.run(
        [f"{linters}/actionlint", "-no-color", "-"], input=bad, capture_output=True, text=True
    )
    assert done.returncode == 1 and "featurez" in done.stdout  # the lint can fail
