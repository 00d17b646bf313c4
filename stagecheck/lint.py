"""Feature lint: every step of every scenario matches exactly one step definition, and its
arguments convert (durations, counts), without a cluster.

    scripts/lint-features [PATH ...]     default: features/

Prints ``file:line: problem`` for each problem and exits 1 when there is any.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pytest_bdd.exceptions import GherkinParseError
from pytest_bdd.parser import Feature, FeatureParser, Scenario, ScenarioTemplate, Step
from pytest_bdd.steps import StepFunctionContext, step_function_context_registry

from stagecheck.plugin import gherkin_reason


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.text}"


def load_step_definitions(root: Path) -> list[StepFunctionContext]:
    """Import every module of the step vocabulary (steps/*.py) and return its definitions."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    for module in sorted((root / "steps").glob("*.py")):
        if module.stem != "__init__":
            importlib.import_module(f"steps.{module.stem}")
    return list(step_function_context_registry.values())


def feature_files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(path.rglob("*.feature"))
        else:
            yield path


def lint_file(path: Path, definitions: list[StepFunctionContext]) -> tuple[int, list[Problem]]:
    """The number of steps checked in one feature file, and its problems."""
    try:
        feature = FeatureParser(str(path.parent), path.name).parse()
    except GherkinParseError as error:
        return 0, [Problem(path, getattr(error, "line", 0) or 0, gherkin_reason(error))]
    except OSError as error:
        return 0, [Problem(path, 0, f"cannot be read: {error}")]
    if not feature.scenarios:
        return 0, [Problem(path, feature.line_number, "the feature has no scenario")]
    checked, problems = 0, []
    for step in _steps(feature):
        checked += 1
        problems.extend(_check_step(path, step, definitions))
    return checked, problems


def _steps(feature: Feature) -> Iterator[Step]:
    seen: set[tuple[int, str]] = set()
    for template in feature.scenarios.values():
        for scenario in _rendered(template):
            for step in scenario.steps:
                if (step.line_number, step.name) not in seen:
                    seen.add((step.line_number, step.name))
                    yield step


def _rendered(template: ScenarioTemplate) -> Iterator[Scenario]:
    contexts = [c for examples in template.examples for c in examples.as_contexts()]
    for context in contexts or [{}]:
        yield template.render(context)


def _check_step(path: Path, step: Step, definitions: list[StepFunctionContext]) -> list[Problem]:
    where = f"{step.keyword} {step.name}"
    found = [
        d
        for d in definitions
        if (d.type is None or d.type == step.type) and d.parser.is_matching(step.name)
    ]
    if not found:
        elsewhere = sorted(
            {d.type for d in definitions if d.type and d.parser.is_matching(step.name)}
        )
        if elsewhere:  # a step that changes the cluster, written as a check
            kinds = " or ".join(k.capitalize() for k in elsewhere)
            return [Problem(path, step.line_number, (
                f"misplaced step: {where} is a {kinds} step: a step that changes the cluster "
                "sets the scenario up (Given, When); a Then only checks"))]  # fmt: skip
        hint = _closest(step.name, definitions)
        return [Problem(path, step.line_number, f"undefined step: {where}{hint}")]
    if len(found) > 1:
        names = ", ".join(f"{d.step_func.__module__}.{d.step_func.__name__}" for d in found)
        return [Problem(path, step.line_number, f"ambiguous step: {where} (matches {names})")]
    definition = found[0]
    arguments = definition.parser.parse_arguments(step.name) or {}
    for name, value in arguments.items():
        converter = definition.converters.get(name)
        if converter is None:
            continue
        try:
            converter(value)
        except (ValueError, TypeError) as error:
            return [Problem(path, step.line_number, f"bad argument in {where}: {error}")]
    return []


def _closest(text: str, definitions: list[StepFunctionContext]) -> str:
    readable = [readable_pattern(d.parser.name) for d in definitions]
    close = difflib.get_close_matches(text, readable, n=2, cutoff=0.3)
    return "".join(f"\n    did you mean: {c}" for c in close)


def readable_pattern(pattern: str) -> str:
    """A step regex as a sentence: named groups become <name>, optional parts [...]."""
    out: list[str] = []
    stack: list[str] = []  # what each open group turns into when it closes
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("(?P<", i):
            name = pattern[i + 4 : pattern.index(">", i)]
            out.append(f"<{name}>")
            stack.append("skip")
            i = _skip_group(pattern, i)
            stack.pop()
            continue
        if pattern.startswith("(?:", i):
            stack.append(str(len(out)))
            out.append("")
            i += 3
            continue
        if char == ")":
            start = int(stack.pop())
            optional = pattern.startswith(")?", i)
            body = "".join(out[start:])
            del out[start:]
            out.append(f" [{body.strip()}]" if optional else body)
            i += 2 if optional else 1
            continue
        if char == "\\" and i + 1 < len(pattern):
            out.append(pattern[i + 1])
            i += 2
            continue
        if char == "?" and out and out[-1].isalpha():
            out[-1] = f"({out[-1]})"  # an optional letter: pods? reads pod(s)
        elif char != "?":
            out.append(char)
        i += 1
    return " ".join("".join(out).split())


def _skip_group(pattern: str, start: int) -> int:
    depth, i = 0, start
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
            continue
        depth += {"(": 1, ")": -1}.get(pattern[i], 0)
        i += 1
        if depth == 0:
            break
    return i


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lint-features", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[Path("features")])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the project checkout")
    args = parser.parse_args(argv)
    definitions = load_step_definitions(args.root.resolve())
    files = list(feature_files(args.paths))
    if not files:
        print(f"lint-features: no .feature file under {', '.join(map(str, args.paths))}")
        return 1
    checked, problems = 0, []
    for path in files:
        count, found = lint_file(path, definitions)
        checked += count
        problems.extend(found)
    for problem in problems:
        print(problem)
    print(f"{len(files)} feature files, {checked} steps checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
