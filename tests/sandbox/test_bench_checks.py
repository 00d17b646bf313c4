"""The benchmark's three renderings of the stage-2 Kubernetes checks come from one list, so the
feature, the kubectl script and the chainsaw test cannot drift apart. No peer build needed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from benchmarks import bench_checks
from tests.support import ROOT

BENCHMARKS = ROOT / "benchmarks"


def test_the_committed_files_are_what_the_list_renders() -> None:
    for relative, render in bench_checks.RENDERED.items():
        assert (BENCHMARKS / relative).read_text() == render(), (
            f"benchmarks/{relative} is stale: python -m benchmarks.bench_checks"
        )


def test_each_rendering_holds_every_check_once() -> None:
    checks = bench_checks.CHECKS
    feature = (BENCHMARKS / "stage2-kubernetes.feature").read_text()
    steps = re.findall(r"^    (?:Then|And) (.+)$", feature, re.MULTILINE)
    assert steps == [c.sentence for c in checks]

    script = (BENCHMARKS / "validate.sh").read_text()
    assert script.count('"$("$k" get ') == len(checks)

    test = yaml.safe_load(
        (BENCHMARKS / "chainsaw/stage2-kubernetes/chainsaw-test.yaml").read_text()
    )
    assert len(test["spec"]["steps"]) == len(checks)


def test_the_script_fails_on_a_mismatch(tmp_path: Path) -> None:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text("#!/bin/sh\necho Unknown\n")  # every field reads "Unknown"
    kubectl.chmod(0o755)
    done = subprocess.run(
        ["bash", str(BENCHMARKS / "validate.sh")],
        env={"KUBECTL": str(kubectl), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert 'FAIL the Docling server "docling" is ready: expected True, got Unknown' in done.stderr
