"""JUnit, the stage status page and the terminal summary agree with the run; no credential
reaches any of them; a run that cannot reach its target says so in each."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from stagecheck.reporting.categories import classify
from tests.reporting.conftest import CANARY, FEATURES, StageRun, kubeconfig_with_canary_token
from tests.support import run_id, run_pytest

MESH = "Mesh membership"
VECTORS = "Vector store widgets"
DEFECTS = "Mistakes of the specification"
OUTLINE = "A widget is in its phase"
TITLES = {
    f"{VECTORS} > The ready widget reports Ready": "passed",
    f"{VECTORS} > {OUTLINE} [#1 name=ready-widget, phase=Ready]": "passed",
    f"{VECTORS} > {OUTLINE} [#2 name=failing-widget, phase=Ready]": "failure",
    f"{VECTORS} > {OUTLINE} [#3 name=ready-widget, phase=Ready]": "passed",
    f"{MESH} > The stage namespace is enrolled for sidecar injection": "passed",
    f"{MESH} > Docling pods are ready": "failure",
    f"{MESH} > The object storage credentials are labelled": "failure",
    f"{DEFECTS} > A step nobody defined": "error",
    f"{DEFECTS} > A duration the step cannot read": "error",
    f"{DEFECTS} > Writes refused on a read-only target": "error",
    "malformed.feature > the feature file is valid Gherkin": "error",
}
# The pod's state after "cause: pod docling-0 is" depends on the node (kwok evicts pods of the
# unmanaged node after five minutes); the reports must agree on it, whatever it is.
DOCLING_CAUSE = (
    "pods with labels app=docling in private-ai-demo: expected every pod Ready, "
    "actual 0/1 pods Ready; cause: pod docling-0 is "
)


def docling_cause(stage_run: StageRun) -> str:
    """The cause as the engine gave it, from the Allure result's message."""
    message = stage_run.allure_result("Docling pods are ready")["statusDetails"]["message"]
    cause = re.search(r"\n  cause: +(.*)", message)
    assert cause, message
    return cause.group(1)


def outcome(case: ET.Element) -> str:
    return next((child.tag for child in case), "passed")


def pytest_counts(output: str) -> dict[str, int]:
    last = output.strip().splitlines()[-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|errors?)", last)}


def test_junit_has_a_case_per_scenario_named_feature_and_scenario(stage_run: StageRun) -> None:
    root = ET.parse(stage_run.reports / "junit.xml").getroot()
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert {name: outcome(case) for name, case in cases.items()} == TITLES
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == "reporting"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("11", "3", "4")
    docling = cases[f"{MESH} > Docling pods are ready"].find("failure")
    assert docling is not None
    assert docling.get("message") == DOCLING_CAUSE + docling_cause(stage_run).removeprefix(
        "pod docling-0 is "
    )
    assert docling.get("type") == "Product defects"
    assert 'Then all pods with labels "app=docling" are ready' in (docling.text or "")
    refused = cases[f"{DEFECTS} > Writes refused on a read-only target"].find("error")
    assert refused is not None and refused.get("type") == "Environment problems"


def test_junit_agrees_with_pytests_own_outcomes(stage_run: StageRun) -> None:
    root = ET.parse(stage_run.reports / "junit.xml").getroot()
    ours = [outcome(case) for case in root.iter("testcase")]
    counts = pytest_counts(stage_run.run.output)
    assert ours.count("passed") == counts["passed"] == 4
    assert len(ours) - ours.count("passed") == counts["failed"] + counts["error"] == 7
    for name, case in ((c.get("name", ""), c) for c in root.iter("testcase")):
        scenario = name.split(" > ", 1)[1]
        if "[" in scenario or "Gherkin" in scenario:
            continue  # pytest's JUnit folds outline examples; no test exists for a bad file
        theirs = stage_run.run.result(scenario).outcome
        assert (theirs == "passed") == (outcome(case) == "passed"), name


def component_rows(page: str) -> dict[str, tuple[str, str]]:
    table = page.split("## Components", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ")]
    return {row[0].strip("| "): (row[1], row[2]) for row in rows[1:]}


def test_status_page_agrees_with_the_run(stage_run: StageRun) -> None:
    page = (stage_run.reports / "reporting-status.md").read_text(encoding="utf-8")
    assert page.startswith("# Stage status: reporting\n")
    assert "**❌ 2 of 4 components failing** · 4 of 11 scenarios pass" in page
    assert component_rows(page) == {
        "defects": ("⚠️ unchecked", "0/3"),
        "malformed": ("⚠️ unchecked", "0/1"),
        "mesh": ("❌ failing", "1/3"),
        "milvus": ("❌ failing", "3/4"),
    }
    failing = page.split("## Failing: the deployment is not as specified", 1)[1]
    failing = failing.split("## Could not be checked", 1)[0]
    docling = failing.split(f"### ❌ mesh: {MESH} > Docling pods are ready", 1)[1].split("###")[0]
    assert "- **Object:** pods with labels app=docling in private-ai-demo" in docling
    assert "- **Expected:** every pod Ready" in docling
    assert "- **Actual:** 0/1 pods Ready" in docling
    assert f"- **Cause:** {docling_cause(stage_run)}\n" in docling
    assert "([tests/features/reporting/mesh.feature:12](" in docling and "#L12))" in docling
    assert "tests/features/reporting/mesh.feature::test_docling_pods_are_ready" in docling
    assert failing.count("\n### ") == 3
    unchecked = page.split("## Could not be checked", 1)[1].split("## Environment", 1)[0]
    assert "Writes refused on a read-only target" in unchecked
    assert "- **Kind of problem:** Environment problems" in unchecked
    assert unchecked.count("- **Kind of problem:** Test defects") == 3
    environment = page.split("## Environment", 1)[1]
    assert f"`{run_id(stage_run.run.output)}`" in environment
    assert "| milvus | 2.4.1 |" in environment and "| kubernetes | v1" in environment
    assert "| Images | " in environment  # what the stage's pods ran
    assert "docling-docling: `registry.example.com/docling:1.0`" in environment


def test_status_page_links_to_evidence_and_specification_that_exist(stage_run: StageRun) -> None:
    page_path = stage_run.reports / "reporting-status.md"
    page = page_path.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)]+)\)", page)
    evidence = [t for t in targets if t.startswith("reporting-evidence/")]
    assert len(evidence) >= 7  # pod YAML, events and pods; the secret; the widget
    for target in targets:
        if "allure-report" in target:
            continue  # rendered on demand by scripts/report
        assert (page_path.parent / target.split("#L")[0]).exists(), target
    pod = next(t for t in evidence if t.endswith("pod-private-ai-demo-docling-0.yaml"))
    assert "value: <redacted>" in (page_path.parent / pod).read_text()
    state = json.loads((stage_run.reports / "reporting-status.json").read_text())
    assert state["components"]["mesh"]["state"] == "failing"


def test_terminal_summary_gives_each_component_and_each_cause_in_one_line(
    stage_run: StageRun,
) -> None:
    output = stage_run.run.output
    summary = output.split(" stagecheck: reporting ", 1)[1].split("\nreports: ", 1)[0]
    lines = summary.splitlines()[1:]
    assert [line.split()[:2] for line in lines if not line.startswith(" ")] == [
        ["⚠️", "defects"],
        ["⚠️", "malformed"],
        ["❌", "mesh"],
        ["❌", "milvus"],
    ]
    assert "❌ mesh       failing: 1/3 scenarios pass" in lines
    cause = DOCLING_CAUSE + docling_cause(stage_run).removeprefix("pod docling-0 is ")
    assert f"     Docling pods are ready: [product defects] {cause}" in lines
    refused = [line for line in lines if line.startswith("     Writes refused")]
    assert refused and "[environment problems] refused to label namespace" in refused[0]
    assert sum(line.startswith("     ") for line in lines) == 7
    assert str(stage_run.reports / "reporting-status.md") in output


def test_no_credential_reaches_any_report(stage_run: StageRun) -> None:
    assert CANARY in stage_run.kubeconfig.read_text()  # the canary is really in the run's reach
    files = [p for p in stage_run.reports.rglob("*") if p.is_file()]
    assert len(files) > 20
    for path in files:
        assert CANARY.encode() not in path.read_bytes(), path
    assert CANARY not in stage_run.run.output


def test_a_run_that_cannot_reach_its_target_says_so_in_every_report(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: placeholder}}]\n"
        "contexts: [{name: dev, context: {cluster: c, user: u}}]\n"
    )
    kubeconfig_with_canary_token(kubeconfig)
    reports = tmp_path / "reports"
    run = run_pytest(
        [
            str(FEATURES / "vectors.feature"),
            "--target",
            "cluster:dev",
            "--kubeconfig",
            str(kubeconfig),
        ],
        tmp_path,
        env={"STAGECHECK_REPORTS": str(reports)},
    )
    assert run.returncode == 3
    page = (reports / "reporting-status.md").read_text(encoding="utf-8")
    assert "**The run stopped before checking everything:**" in page
    assert "is unreachable at https://127.0.0.1:1" in page
    assert component_rows(page) == {"milvus": ("⚠️ unchecked", "0/4")}
    [stopped] = [
        json.loads(p.read_text()) for p in (reports / "allure-results").glob("*-result.json")
    ]
    assert stopped["name"] == "the run reaches target 'cluster:dev'"
    category = classify(stopped["status"], stopped["statusDetails"]["message"])
    assert category is not None and category.key == "environment"
    cases = list(ET.parse(reports / "junit.xml").getroot().iter("testcase"))
    assert sorted(outcome(case) for case in cases) == ["error"] + ["skipped"] * 4
    for path in (p for p in reports.rglob("*") if p.is_file()):
        assert CANARY.encode() not in path.read_bytes(), path
