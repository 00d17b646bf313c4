"""What a red scenario is about: the deployment, the environment it ran in, the specification,
or stagecheck itself, decided by the class of the exception that made it red.

Every class of ``stagecheck.errors`` says its category; so does the ``StepFailure`` of a red
check; a few exceptions of pytest and pytest-bdd are named here. Anything else (a
``KeyError``, a raw ``JSONDecodeError``) is a defect of stagecheck.

One table serves every reader. The message is pytest's one-line form of the exception,
``module.Class: text``: the expressions match its class name only, so Allure's
``categories.json`` and ``classify`` here (the status page, JUnit, the terminal) cannot
disagree. Each expression is valid in Python, JavaScript (Allure 3) and Java (Allure 2, which
matches the whole message).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from stagecheck import errors
from stagecheck.engine.outcome import StepFailure
from stagecheck.errors import Category as Kind
from stagecheck.errors import StagecheckError

RED_STATUSES = ("failed", "broken")

# Exceptions not of stagecheck's tree that a red scenario may carry.
OTHER_CLASSES: dict[str, Kind] = {
    "AssertionError": "product",  # an assert in a team's own step
    "Failed": "test",  # pytest.fail() in a step: the step decided, not a check
    "CollectError": "test",  # a feature file that cannot be read (stagecheck's collector)
    "pytest_bdd.exceptions.StepDefinitionNotFoundError": "test",
    "pytest_bdd.exceptions.GherkinParseError": "test",
    "_pytest.outcomes.Exit": "environment",  # the run was stopped before the scenario ran
}


def class_names(kind: Kind) -> list[str]:
    """The qualified names (as pytest prints them) of the exception classes of a category."""
    tree: list[type[StagecheckError] | type[StepFailure]] = [
        c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, StagecheckError)
    ]
    tree.append(StepFailure)
    names = [f"{c.__module__}.{c.__qualname__}" for c in tree if c.category == kind]
    return sorted(names + [name for name, k in OTHER_CLASSES.items() if k == kind])


def _classes(kind: Kind) -> str:
    return "(?:" + "|".join(re.escape(name) for name in class_names(kind)) + ")(?::|$)"


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


_NAMED = "|".join(_classes(k) for k in ("product", "environment", "test"))
PRODUCT = Category(
    "product",
    "Product defects",
    "The deployment is not as the stage specifies: which object, expected, actual, since, cause.",
    rf"^{_classes('product')}[\s\S]*$",
)
ENVIRONMENT = Category(
    "environment",
    "Environment problems",
    "The run could not check the stage: target unreachable, credentials rejected or missing, "
    "writes refused, a probe that cannot start, cleanup impossible.",
    rf"^{_classes('environment')}[\s\S]*$",
)
TEST = Category(
    "test",
    "Test defects",
    "The specification is wrong: undefined step, unreadable argument, malformed feature or "
    "manifest, misspelled kind.",
    rf"^{_classes('test')}[\s\S]*$",
)
STAGECHECK = Category(
    "stagecheck",
    "Stagecheck defects",
    "stagecheck itself failed (an exception it did not mean to raise): report it with the "
    "scenario's trace.",
    rf"^(?!{_NAMED})[\s\S]*$",
)
CATEGORIES = (PRODUCT, ENVIRONMENT, TEST, STAGECHECK)


def classify(status: str, message: str) -> Category | None:
    """The category of a result, None when it is not red (passed, skipped)."""
    return next((c for c in CATEGORIES if c.matches(status, message)), None)


def allure_categories() -> list[dict[str, Any]]:
    return [category.as_allure() for category in CATEGORIES]
