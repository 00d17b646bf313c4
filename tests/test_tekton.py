"""deploy/tekton: every field is one Tekton v1 has, every reference points at something that
exists, tekton-lint passes, and the report step's verdict logic works on real reports."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import ROOT, linters_bin

TEKTON = ROOT / "deploy" / "tekton"

# The fields of the Tekton v1 types these files use (tektoncd/pipeline pkg/apis/pipeline/v1:
# task_types.go, container_types.go, pipeline_types.go, pipelinerun_types.go, param_types.go,
# result_types.go, workspace_types.go); "*" is any value, a dict names a nested type.
PARAM_SPEC = {"name", "type", "description", "default", "properties", "enum"}
PARAM = {"name", "value"}
STEP = {"name", "displayName", "image", "command", "args", "workingDir", "envFrom", "env",
        "computeResources", "volumeMounts", "volumeDevices", "imagePullPolicy",
        "securityContext", "script", "timeout", "workspaces", "onError", "stdoutConfig",
        "stderrConfig", "ref", "params", "results", "when"}  # fmt: skip
SCHEMA: dict[str, dict[str, Any]] = {
    "Task": {
        "params": PARAM_SPEC, "displayName": "*", "description": "*", "steps": STEP,
        "volumes": "*", "stepTemplate": STEP - {"name", "script"}, "sidecars": "*",
        "workspaces": {"name", "description", "mountPath", "readOnly", "optional"},
        "results": {"name", "type", "properties", "description", "value"},
    },
    "Pipeline": {
        "displayName": "*", "description": "*", "params": PARAM_SPEC, "finally": "*",
        "workspaces": {"name", "description", "optional"},
        "results": {"name", "type", "description", "value"},
        "tasks": {"name", "displayName", "description", "taskRef", "taskSpec", "when",
                  "retries", "runAfter", "params", "matrix", "workspaces", "timeout",
                  "pipelineRef", "pipelineSpec", "onError"},
    },
    "PipelineRun": {
        "pipelineRef": {"name", "resolver", "params"}, "pipelineSpec": "*", "params": PARAM,
        "status": "*", "timeouts": {"pipeline", "tasks", "finally"}, "taskRunSpecs": "*",
        "taskRunTemplate": {"podTemplate", "serviceAccountName"}, "managedBy": "*",
        "workspaces": {"name", "subPath", "volumeClaimTemplate", "persistentVolumeClaim",
                       "emptyDir", "configMap", "secret", "projected", "csi"},
    },
}  # fmt: skip


def documents() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(TEKTON.glob("*.yaml")):
        if path.name.startswith("."):
            continue
        doc = yaml.safe_load(path.read_text())
        found[doc["kind"]] = doc
    return found


def unknown_fields(doc: dict[str, Any]) -> list[str]:
    """Fields of ``doc``'s spec that its Tekton v1 type does not have, as dotted paths."""
    problems = []
    assert doc["apiVersion"] == "tekton.dev/v1", doc["apiVersion"]
    for key, value in doc["spec"].items():
        allowed = SCHEMA[doc["kind"]].get(key)
        if allowed is None:
            problems.append(f"spec.{key}")
        elif isinstance(allowed, set):
            items = value if isinstance(value, list) else [value]
            for index, item in enumerate(items):
                problems += [f"spec.{key}[{index}].{k}" for k in item if k not in allowed]
    return problems


def test_every_field_is_a_tekton_v1_field() -> None:
    docs = documents()
    assert set(docs) == {"Task", "Pipeline", "PipelineRun"}
    assert {kind: unknown_fields(doc) for kind, doc in docs.items()} == {
        "Task": [], "Pipeline": [], "PipelineRun": []
    }  # fmt: skip


def test_a_misspelled_field_is_caught() -> None:
    task = documents()["Task"]
    task["spec"]["steps"][0]["onErorr"] = "continue"
    assert unknown_fields(task) == ["spec.steps[0].onErorr"]


def test_references_point_at_what_exists() -> None:
    docs = documents()
    task, pipeline, run = docs["Task"]["spec"], docs["Pipeline"]["spec"], docs["PipelineRun"]
    (check,) = pipeline["tasks"]
    assert check["taskRef"]["name"] == docs["Task"]["metadata"]["name"]
    assert {p["name"] for p in check["params"]} <= {p["name"] for p in task["params"]}
    assert {w["name"] for w in check["workspaces"]} == {w["name"] for w in task["workspaces"]}
    task_results = {r["name"] for r in task["results"]}
    for result in pipeline["results"]:
        assert result["value"] == f"$(tasks.{check['name']}.results.{result['name']})"
        assert result["name"] in task_results
    assert run["spec"]["pipelineRef"]["name"] == docs["Pipeline"]["metadata"]["name"]
    steps = {s["name"]: s for s in task["steps"]}
    assert steps["check"]["onError"] == "continue"  # a red stage still gets its report step
    assert "$(steps.step-check.exitCode.path)" in steps["report"]["script"]
    reader = yaml.safe_load_all((ROOT / "deploy" / "reader-rbac.yaml").read_text())
    accounts = {d["metadata"]["name"] for d in reader if d["kind"] == "ServiceAccount"}
    assert run["spec"]["taskRunTemplate"]["serviceAccountName"] in accounts
    pvc = yaml.safe_load((ROOT / "deploy" / "reports-pvc.yaml").read_text())
    (reports,) = run["spec"]["workspaces"]
    assert reports["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]


def test_tekton_lint_passes_and_can_fail(tmp_path: Path) -> None:
    lint = linters_bin() / "tekton-lint"
    done = subprocess.run([str(lint), "*.yaml"], cwd=TEKTON, capture_output=True, text=True)
    assert done.returncode == 0 and "problem" not in done.stdout, done.stdout + done.stderr
    broken = yaml.safe_load((TEKTON / "pipeline.yaml").read_text())
    del broken["spec"]["tasks"][0]["workspaces"]
    for name in ("task.yaml", ".tektonlintrc.yaml"):
        (tmp_path / name).write_text((TEKTON / name).read_text())
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump(broken))
    done = subprocess.run([str(lint), "*.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 1 and "no-missing-workspace" in done.stdout


@pytest.mark.parametrize(
    ("code", "junit", "verdict", "failed"),
    [
        ("0", '<testsuites failures="0" errors="0"/>', "passed", "0"),
        ("1", '<testsuites failures="2" errors="1"/>', "failed", "3"),
        ("3", None, "failed", "unknown"),  # the target was unusable: no JUnit at all
    ],
)
def test_the_report_step_writes_the_results_and_the_verdict(
    tmp_path: Path, code: str, junit: str | None, verdict: str, failed: str
) -> None:
    task = documents()["Task"]["spec"]
    script = next(s["script"] for s in task["steps"] if s["name"] == "report")
    reports = tmp_path / "reports"
    reports.mkdir()
    if junit:
        (reports / "junit.xml").write_text(junit)
        (reports / "stage2-status.md").write_text("# Stage status: stage2\n")
    (tmp_path / "exit-code").write_text(code)
    for placeholder, path in {
        "$(steps.step-check.exitCode.path)": tmp_path / "exit-code",
        "$(workspaces.reports.path)": reports,
        "$(results.verdict.path)": tmp_path / "verdict",
        "$(results.failed-scenarios.path)": tmp_path / "failed",
    }.items():  # what Tekton substitutes before the step runs
        script = script.replace(placeholder, str(path))
    (tmp_path / "report.sh").write_text(script)
    done = subprocess.run(["bash", str(tmp_path / "report.sh")], capture_output=True, text=True)
    assert done.returncode == int(code), done.stderr
    assert (tmp_path / "verdict").read_text() == verdict
    assert (tmp_path / "failed").read_text() == failed
    assert f"stagecheck: {verdict} ({failed} red scenarios; pytest exit status {code})" in (
        done.stdout
    )
