"""stagecheck installed from its wheel gives any repository the whole vocabulary through its
pytest11 entry point: a stage repository with only ``features/`` and ``stagecheck.toml``
collects, lints and lists the same sentences as this checkout, with no conftest. Its run
against the sandbox is in tests/sandbox/test_stage2.py (the healthy variant)."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.support import ROOT, installed_stagecheck, stage_repository


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("installed")
    (tmp / "install").mkdir()
    (tmp / "repository").mkdir()
    return installed_stagecheck(tmp / "install"), stage_repository(tmp / "repository")


def run(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_the_installed_copy_is_the_one_pytest_loads(installed: tuple[Path, Path]) -> None:
    python, repository = installed
    where = run(python, "-c", "import stagecheck.plugins; print(stagecheck.plugins.__file__)",
                cwd=repository)  # fmt: skip
    assert where.stdout.startswith(str(python.parents[1])), where.stdout + where.stderr
    collected = run(python, "-m", "pytest", "--collect-only", "-q", "features/stage2",
                    cwd=repository)  # fmt: skip
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert "18 tests collected" in collected.stdout, collected.stdout
    # Its tags are declared markers whichever plugin was installed first (pytest-bdd marks them).
    assert "PytestUnknownMarkWarning" not in collected.stdout + collected.stderr


def test_the_wheel_carries_no_benchmark_harness(installed: tuple[Path, Path]) -> None:
    python, _ = installed
    (wheel,) = (python.parents[2] / "dist").glob("stagecheck-*.whl")  # installed_stagecheck's
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("stagecheck/sandbox/") for n in names), names  # the sandbox is in it
    harness = [n for n in names if "bench" in Path(n).name or n.startswith("benchmarks/")]
    assert harness == [], harness


def test_the_lint_and_the_catalogue_see_the_whole_vocabulary(installed: tuple[Path, Path]) -> None:
    python, repository = installed
    lint = run(python, "-m", "stagecheck.lint", "features", cwd=repository)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "0 problems" in lint.stdout
    listed = run(python, "-m", "stagecheck.catalogue", cwd=repository)
    here = subprocess.run(
        [str(ROOT / "scripts" / "steps")], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == here.stdout  # each sentence once, from stagecheck.steps
