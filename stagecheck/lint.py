"""Feature lint: every step of every scenario matches exactly one step definition, and its
arguments convert (durations, counts), without a cluster.

    scripts/lint-features [PATH ...]     default: features/
    scripts/lint-features --kinds reports/served-kinds.json [PATH ...]

With ``--kinds`` (the kinds a run saw, which every run saves as ``served-kinds.json`` among its
reports, or ``kubectl api-resources -o wide`` output) a kind the cluster does not serve is
named too, with the closest kinds it does serve.

Prints ``file:line: problem`` for each problem and exits 1 when there is any.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pytest_bdd.exceptions import GherkinParseError
from pytest_bdd.parser import Feature, FeatureParser, Scenario, ScenarioTemplate, Step
from pytest_bdd.steps import StepFunctionContext

from stagecheck.catalogue import closest_sentences, load_step_definitions, where_defined
from stagecheck.kube.discovery import Discovery
from stagecheck.plugin import gherkin_reason


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.text}"


def feature_files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(path.rglob("*.feature"))
        else:
            yield path


def lint_file(
    path: Path, definitions: list[StepFunctionContext], served: Discovery | None = None
) -> tuple[int, list[Problem]]:
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
        problems.extend(_check_step(path, step, definitions, served))
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


def _check_step(
    path: Path, step: Step, definitions: list[StepFunctionContext], served: Discovery | None
) -> list[Problem]:
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
        hint = closest_sentences(step.name, definitions)
        return [Problem(path, step.line_number, f"undefined step: {where}{hint}")]
    if len(found) > 1:  # a run would take one of them, silently
        names = "".join(f"\n    {where_defined(d)}" for d in found)
        return [Problem(path, step.line_number, f"ambiguous step: {where} matches{names}")]
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
    kind = arguments.get("kind")
    if served is not None and isinstance(kind, str) and served.match(kind) is None:
        message, _ = served.unknown_message(kind)
        return [Problem(path, step.line_number, f"unknown kind in {where}: {message}")]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lint-features", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[Path("features")])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the project checkout")
    parser.add_argument(
        "--kinds",
        type=Path,
        help="the kinds a cluster serves: a run's served-kinds.json, or kubectl api-resources",
    )
    args = parser.parse_args(argv)
    try:
        kinds = Discovery.saved(args.kinds) if args.kinds else None
    except (OSError, ValueError, TypeError, KeyError) as error:
        print(f"lint-features: --kinds {args.kinds}: cannot be read: {error}")
        return 2
    files = list(feature_files(args.paths))
    definitions = load_step_definitions(args.root.resolve(), args.paths)
    if not files:
        print(f"lint-features: no .feature file under {', '.join(map(str, args.paths))}")
        return 1
    checked, problems = 0, []
    for path in files:
        count, found = lint_file(path, definitions, kinds)
        checked += count
        problems.extend(found)
    for problem in problems:
        print(problem)
    against = f", kinds as in {args.kinds}" if kinds else ""
    print(f"{len(files)} feature files, {checked} steps checked{against}, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
