"""The step catalogue, generated from the step definitions: every sentence in plain words
(``<name>`` for a value, ``[...]`` for an optional part), with the keywords it is written under
and the module that defines it. ``scripts/steps`` prints it; the README's examples are checked
against it by the tests, so the two never drift.

    scripts/steps            the catalogue, one sentence a line
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import importlib.util
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from pytest_bdd.steps import StepFunctionContext, step_function_context_registry


def load_step_definitions(root: Path, features: Iterable[Path] = ()) -> list[StepFunctionContext]:
    """Every step definition a run of ``features`` would load: the installed pytest plugins'
    (stagecheck's vocabulary among them), the repository's own ``steps/*.py``, and those of
    every conftest.py pytest would read for them (the root's, and each one from a feature's
    folder up), each with the modules its ``pytest_plugins`` names."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    for plugin in entry_points(group="pytest11"):
        with contextlib.suppress(Exception):  # a broken third-party plugin is pytest's to report
            _load_plugins(plugin.load())
    for module in sorted((root / "steps").glob("*.py")):
        if module.stem != "__init__":
            importlib.import_module(f"steps.{module.stem}")
    for conftest in _conftests(root, features):
        _load_conftest(conftest)
    return [
        d
        for d in step_function_context_registry.values()
        if not d.step_func.__module__.startswith("pytest_bdd")  # its own "trace" step
    ]


def _conftests(root: Path, features: Iterable[Path]) -> list[Path]:
    found = [root / "conftest.py"]
    for feature in features:
        folder = feature.resolve() if feature.is_dir() else feature.resolve().parent
        for parent in [folder, *folder.parents]:
            found.append(parent / "conftest.py")
            if parent == root.resolve():
                break
    return [c for c in dict.fromkeys(found) if c.is_file()]


def _load_conftest(path: Path) -> None:
    name = "_stagecheck_lint_conftest_" + "_".join(path.resolve().parent.parts[1:])
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    _load_plugins(module)


def _load_plugins(module: object) -> None:
    """Import the modules a plugin or conftest names in ``pytest_plugins``, as pytest does."""
    names = getattr(module, "pytest_plugins", []) or []
    for name in [names] if isinstance(names, str) else names:
        _load_plugins(importlib.import_module(name))


def where_defined(definition: StepFunctionContext) -> str:
    """``module.function (file:line)`` of a step definition."""
    func = definition.step_func
    code = getattr(func, "__code__", None)
    place = f" ({code.co_filename}:{code.co_firstlineno})" if code is not None else ""
    return f"{func.__module__}.{func.__name__}{place}"


def closest_sentences(text: str, definitions: list[StepFunctionContext] | None = None) -> str:
    """Did-you-mean lines: the two documented sentences closest to ``text``, in plain words
    (default: every definition loaded, conftest files and plugins included)."""
    if definitions is None:
        definitions = [d for d in step_function_context_registry.values()
                       if not d.step_func.__module__.startswith("pytest_bdd")]  # fmt: skip
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
        if char == "[":  # a letter's two cases ([Dd]eployment): the first one reads
            out.append(pattern[i + 1])
            i = pattern.index("]", i + 1) + 1
            continue
        if char == "|":  # one of two wordings
            out.append(" | ")
            i += 1
            continue
        if char in "^$":  # anchors are not words
            i += 1
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


@dataclass(frozen=True)
class Entry:
    sentence: str  # readable: the stage namespace exists [within <within>]
    keywords: tuple[str, ...]  # ("Given", "Then"), ("Given", "When")
    module: str
    definitions: tuple[StepFunctionContext, ...]

    def matches(self, text: str) -> bool:
        return any(d.parser.is_matching(text) for d in self.definitions)


def catalogue(root: Path) -> list[Entry]:
    """One entry per sentence, whatever keywords it is registered under."""
    by_pattern: dict[str, list[StepFunctionContext]] = {}
    for definition in load_step_definitions(root):
        by_pattern.setdefault(definition.parser.name, []).append(definition)
    entries = []
    for pattern, definitions in by_pattern.items():
        types = {d.type for d in definitions}
        keywords = ("Given", "When", "Then") if None in types else tuple(
            k for k in ("Given", "When", "Then") if k.lower() in types
        )  # fmt: skip
        module = definitions[0].step_func.__module__
        entries.append(Entry(readable_pattern(pattern), keywords, module, tuple(definitions)))
    return sorted(entries, key=lambda e: (e.module, e.sentence))


def _keywords(entry: Entry) -> str:
    return "/".join(entry.keywords) if entry.keywords != ("Given", "When", "Then") else "any"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/steps", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)
    module = None
    for entry in catalogue(args.root):
        if entry.module != module:
            module = entry.module
            print(f"\n# {module}")
        print(f"{_keywords(entry):>11}  {entry.sentence}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
