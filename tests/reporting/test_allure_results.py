"""Allure results of a run with green and red scenarios: steps, outline examples, labels,
evidence on the red step, environment.properties and categories.json."""

from __future__ import annotations

import json
import re

from stagecheck.kube.client import Kube
from stagecheck.reporting.environment import read_properties
from tests.reporting.conftest import StageRun
from tests.support import run_id

OUTLINE = "A widget is in its phase"


def test_every_gherkin_step_is_a_step_and_the_evidence_is_on_the_red_one(
    stage_run: StageRun,
) -> None:
    result = stage_run.allure_result("Docling pods are ready")
    steps = result["steps"]
    assert [(s["name"], s["status"]) for s in steps] == [
        ("Given the stage namespace exists", "passed"),
        ('Then all pods with labels "app=docling" are ready', "failed"),
        ("And the stage namespace exists", "skipped"),
    ]
    attached = {a["name"]: a["source"] for a in steps[1]["attachments"]}
    assert {"Pod private-ai-demo/docling-0.yaml", "events", "related pods"} <= set(attached)
    assert (
        "kind: Pod"
        in (stage_run.results / attached["Pod private-ai-demo/docling-0.yaml"]).read_text()
    )
    assert not steps[0].get("attachments")
    assert not set(attached) & {a["name"] for a in result.get("attachments", [])}
    assert result["statusDetails"]["message"].startswith(
        "stagecheck.engine.outcome.StepFailure: pods with labels app=docling"
    )


def test_steps_list_no_fixture_objects_as_parameters(stage_run: StageRun) -> None:
    steps = [s for r in stage_run.allure() for s in r.get("steps", [])]
    assert len(steps) >= 10
    assert all(not s.get("parameters") for s in steps), [s.get("parameters") for s in steps]


def test_each_outline_example_is_its_own_result_with_its_parameters(stage_run: StageRun) -> None:
    examples = sorted(
        (r for r in stage_run.allure() if r["name"].startswith(OUTLINE)),
        key=lambda r: r["name"],
    )
    assert [r["name"] for r in examples] == [
        f"{OUTLINE} [#1 name=ready-widget, phase=Ready]",
        f"{OUTLINE} [#2 name=failing-widget, phase=Ready]",
        f"{OUTLINE} [#3 name=ready-widget, phase=Ready]",
    ]
    assert [{p["name"]: p["value"] for p in r["parameters"]} for r in examples] == [
        {"name": "ready-widget", "phase": "Ready", "example": "#1"},
        {"name": "failing-widget", "phase": "Ready", "example": "#2"},
        {"name": "ready-widget", "phase": "Ready", "example": "#3"},
    ]
    assert [r["status"] for r in examples] == ["passed", "failed", "passed"]
    assert examples[1]["steps"][0]["name"] == 'Then the Widget "failing-widget" is in phase "Ready"'
    # One test case; three histories, the identical rows #1 and #3 included (not a retry).
    assert len({r["testCaseId"] for r in examples}) == 1
    assert len({r["historyId"] for r in examples}) == 3


def test_labels_name_the_stage_feature_component_and_tags(stage_run: StageRun) -> None:
    result = stage_run.allure_result("Docling pods are ready")
    labels: dict[str, set[str]] = {}
    for label in result["labels"]:
        labels.setdefault(label["name"], set()).add(label["value"])
    assert labels["epic"] == {"reporting"}
    assert labels["parentSuite"] == {"reporting"}
    assert labels["feature"] == labels["suite"] == {"Mesh membership"}
    assert labels["component"] == {"mesh"}  # the feature's first tag; @tier1 is only a tag
    assert labels["tag"] == {"mesh", "tier1", "evidence"}
    assert result["fullName"] == "tests/features/reporting/mesh.feature:Docling pods are ready"
    untagged = stage_run.allure_result("A step nobody defined")
    assert {(x["name"], x["value"]) for x in untagged["labels"]} >= {("component", "defects")}


def test_a_feature_file_that_is_not_gherkin_has_a_result(stage_run: StageRun) -> None:
    result = stage_run.allure_result("the feature file is valid Gherkin")
    assert result["status"] == "broken"
    assert result["statusDetails"]["message"].startswith("CollectError: ")
    assert "malformed.feature:5: not valid Gherkin" in result["statusDetails"]["message"]
    assert {"name": "component", "value": "malformed"} in result["labels"]


def test_environment_properties_name_the_target_the_cluster_and_the_versions_seen(
    stage_run: StageRun, world: Kube
) -> None:
    properties = read_properties(stage_run.results / "environment.properties")
    assert properties["target"] == f"cluster:{stage_run.context}"
    assert properties["target.type"] == "cluster"
    assert properties["target.context"] == stage_run.context
    assert properties["namespace"] == "private-ai-demo"
    assert properties["run.id"] == run_id(stage_run.run.output)
    assert properties["kubernetes.version"] == world.version()["gitVersion"]
    assert properties["milvus.version"] == "2.4.1"  # recorded by a step through seen_versions
    assert properties["image.docling-docling"] == "registry.example.com/docling:1.0"  # its pods
    assert not any(str(stage_run.kubeconfig) in value for value in properties.values())


RED = {
    "Docling pods are ready": "Product defects",
    "The object storage credentials are labelled": "Product defects",
    f"{OUTLINE} [#2 name=failing-widget, phase=Ready]": "Product defects",
    "Writes refused on a read-only target": "Environment problems",
    "A step nobody defined": "Test defects",
    "A duration the step cannot read": "Test defects",
    "the feature file is valid Gherkin": "Test defects",
}


def test_categories_tell_product_defects_from_environment_and_test_defects(
    stage_run: StageRun,
) -> None:
    categories = json.loads((stage_run.results / "categories.json").read_text())
    assert [c["name"] for c in categories] == [
        "Product defects",
        "Environment problems",
        "Test defects",
        "Stagecheck defects",
    ]
    found = {}
    for result in stage_run.allure():
        message = (result.get("statusDetails") or {}).get("message", "")
        matched = [
            c["name"]
            for c in categories
            if result["status"] in c["matchedStatuses"] and re.search(c["messageRegex"], message)
        ]
        if result["status"] in ("passed", "skipped"):
            assert matched == [], result["name"]
        else:
            assert len(matched) == 1, (result["name"], matched)
            found[result["name"]] = matched[0]
    assert found == RED
