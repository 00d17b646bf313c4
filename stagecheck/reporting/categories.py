"""What a red scenario is about: the deployment, the environment it ran in, or the test itself.

One table serves every reader. Allure's ``categories.json`` matches the same regular
expressions against a result's message as ``classify`` does here for the status page, the
JUnit file and the terminal, so they cannot disagree. The message is pytest's one-line form of
the exception, ``module.Class: text``; each expression is anchored at its start and is valid
in Python, JavaScript (Allure 3) and Java (Allure 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

RED_STATUSES = ("failed", "broken")

_ENVIRONMENT = "|".join(
    [
        r"stagecheck\.errors\.(?:TargetUnreachable|ServerNotTrusted|ConfigError|KubeconfigError"
        r"|CredentialError|Unauthorized|Forbidden|WriteRefused)\b",
        r"stagecheck\.errors\.(?:KubeApiError|NotFound): \S+ \S+ -> HTTP (?:401|403|429|5\d\d)\b",
        r"stagecheck\.errors\.StagecheckError: missing credential",
        r"_pytest\.outcomes\.Exit\b",
        r"Failed: cleanup left changes behind",
    ]
)
# A kind nobody serves, with no close spelling, means its operator is missing: the deployment.
# With a close spelling or another API group it is the feature's mistake (a test defect).
_PRODUCT = "|".join(
    [
        r"stagecheck\.engine\.outcome\.StepFailure\b",
        r"AssertionError\b",
        r"stagecheck\.errors\.UnknownKind: (?![^\n]*(?:closest served|is the API group))",
    ]
)


@dataclass(frozen=True)
class Category:
    key: str
    name: str
    description: str
    message_regex: str

    def matches(self, status: str, message: str) -> bool:
        return status in RED_STATUSES and re.match(self.message_regex, message) is not None

    def as_allure(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "matchedStatuses": list(RED_STATUSES),
            "messageRegex": self.message_regex,
        }


ENVIRONMENT = Category(
    "environment",
    "Environment problems",
    "The run could not check the stage: target unreachable, credentials rejected or missing, "
    "writes refused, cleanup impossible.",
    rf"^(?:{_ENVIRONMENT})[\s\S]*$",
)
PRODUCT = Category(
    "product",
    "Product defects",
    "The deployment is not as the stage specifies: which object, expected, actual, since, cause.",
    rf"^(?!(?:{_ENVIRONMENT}))(?:{_PRODUCT})[\s\S]*$",
)
TEST = Category(
    "test",
    "Test defects",
    "The specification or the framework is wrong: undefined step, unreadable argument, "
    "malformed feature, misspelled kind.",
    rf"^(?!(?:{_ENVIRONMENT}))(?!(?:{_PRODUCT}))[\s\S]*$",
)
CATEGORIES = (PRODUCT, ENVIRONMENT, TEST)


def classify(status: str, message: str) -> Category | None:
    """The category of a result, None when it is not red (passed, skipped)."""
    return next((c for c in CATEGORIES if c.matches(status, message)), None)


def allure_categories() -> list[dict[str, Any]]:
    return [category.as_allure() for category in CATEGORIES]
