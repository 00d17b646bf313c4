"""The categories: one kind of problem per red message, decided by the exception's class, and
the same answer from Allure's JavaScript regular expressions as from Python's."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from stagecheck import errors
from stagecheck.engine.outcome import StepFailure
from stagecheck.errors import StagecheckError
from stagecheck.reporting.categories import CATEGORIES, classify

CATEGORIES_BY_KEY = {c.key: c for c in CATEGORIES}

MESSAGES = {
    "stagecheck.engine.outcome.StepFailure: Deployment private-ai-demo/milvus: expected "
    "Available=True\n  actual:   Available=False\n  cause:    ImagePullBackOff": "product",
    "AssertionError: assert 1 == 2": "product",
    "stagecheck.errors.UnknownKind: the cluster serves no kind 'LlamaStackDistribution'. Is the "
    "operator that owns its CRD installed, and the kind spelled as in the CRD?": "product",
    "stagecheck.errors.MisnamedKind: the cluster serves no kind 'Wigdet'; closest served: Widget "
    "(stagecheck.example.com/v1). Is the operator that owns its CRD installed?": "test",
    "stagecheck.errors.MisnamedKind: the cluster serves no kind 'Widget.example.org': Widget is "
    "served as Widget.stagecheck.example.com/v1 (is the API group in the feature right?)": "test",
    "stagecheck.errors.TargetUnreachable: target 'sandbox' did not answer GET /api": "environment",
    "stagecheck.errors.ConfigError: target 'x' rejected the credentials (HTTP 401)": "environment",
    "stagecheck.errors.WriteRefused: refused to create secret s: read-only": "environment",
    "stagecheck.errors.Unauthorized: the API server did not accept the token": "environment",
    'stagecheck.errors.Forbidden: pods is forbidden: User "u" cannot list': "environment",
    "stagecheck.errors.ServerNotTrusted: the API server at https://x presented": "environment",
    "stagecheck.errors.CredentialError: the exec plugin `oc` of user 'u' ran": "environment",
    "stagecheck.errors.KubeconfigError: kubeconfig /k is not valid YAML": "environment",
    "stagecheck.errors.KubeApiError: GET /api/v1/namespaces -> HTTP 403 Forbidden: no": "environment",
    "stagecheck.errors.KubeApiError: GET /api/v1/pods -> HTTP 503 Unavailable: etcd": "environment",
    "stagecheck.errors.Invalid: PATCH /apis/x -> HTTP 422 Invalid: spec.size": "test",
    "stagecheck.errors.NotFound: GET /apis/x/dspa -> HTTP 404 NotFound: none": "product",
    "stagecheck.errors.MissingCredential: missing credential for secret s: A not set": "environment",
    "stagecheck.errors.StateError: Secret ns/s has no key accesskey (keys: a)": "product",
    "stagecheck.errors.ProbeError: the probe pod cannot start: ErrImagePull": "environment",
    "stagecheck.errors.SpecificationError: the partial object is not valid YAML": "test",
    "stagecheck.errors.StagecheckError: this client was built without its kubeconfig": (
        "stagecheck"
    ),
    "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)": "stagecheck",
    "KeyError: 'status'": "stagecheck",
    "AssertionErrorish: not an assertion": "stagecheck",
    "_pytest.outcomes.Exit: stagecheck: the sandbox control plane is not running": "environment",
    "stagecheck.errors.CleanupIncomplete: cleanup left changes behind:\ndelete Secret x": (
        "environment"
    ),
    "pytest_bdd.exceptions.StepDefinitionNotFoundError: Step definition is not found": "test",
    "stagecheck.errors.BadArgument: '30 parsecs' is not a duration": "test",
    "stagecheck.errors.ManifestError: x.yaml: not valid YAML": "test",
    "CollectError: features/x.feature:5: not valid Gherkin": "test",
    "Failed: the step called pytest.fail": "test",
}


def _every_class() -> list[type[StagecheckError] | type[StepFailure]]:
    tree: list[type[StagecheckError] | type[StepFailure]] = [
        c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, StagecheckError)
    ]
    return [*tree, StepFailure]


@pytest.mark.parametrize("cls", _every_class(), ids=lambda c: c.__name__)
def test_every_class_of_the_tree_is_classified_as_it_says(cls: type[StagecheckError]) -> None:
    message = f"{cls.__module__}.{cls.__qualname__}: what went wrong"
    category = classify("failed", message)
    assert category is not None and category.key == cls.category
    assert CATEGORIES_BY_KEY[cls.category].matches("broken", message)


@pytest.mark.parametrize("status", ["failed", "broken"])
def test_each_red_message_is_one_kind_of_problem(status: str) -> None:
    for message, kind in MESSAGES.items():
        matched = [c.key for c in CATEGORIES if c.matches(status, message)]
        assert matched == [kind], message
        category = classify(status, message)
        assert category is not None and category.key == kind


def test_green_results_have_no_category() -> None:
    for status in ("passed", "skipped"):
        assert all(classify(status, message) is None for message in MESSAGES)


def test_allure_matches_them_the_same_way() -> None:
    """Allure 3 runs the expressions as JavaScript RegExp; Allure 2 as Java full matches."""
    node = shutil.which("node")
    assert node, "Node.js is needed by scripts/report and this test"
    script = (
        "const [cats, msgs] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(msgs.map(m => cats.filter(c => new RegExp(c.re).test(m))"
        ".map(c => c.key))));"
    )
    expected = {
        **MESSAGES,
        **{f"{c.__module__}.{c.__qualname__}: x": c.category for c in _every_class()},
    }
    payload = json.dumps(
        [[{"key": c.key, "re": c.message_regex} for c in CATEGORIES], list(expected)]
    )
    done = subprocess.run(
        [node, "-e", script], input=payload, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == [[kind] for kind in expected.values()]
