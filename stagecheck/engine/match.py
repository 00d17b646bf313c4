"""Partial-object matching: only the fields written must match.

Mappings match when every expected key matches; lists match as an unordered subset, each
expected item against a distinct actual item (so ``status.conditions`` can list only the
conditions that matter, in any order); scalars match by equality, numbers and their string
forms alike as YAML writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Mismatch:
    path: str
    expected: Any
    actual: Any
    note: str = ""

    def __str__(self) -> str:
        detail = f" ({self.note})" if self.note else ""
        found = _short(self.actual)
        return f"{self.path or '.'}: expected {_short(self.expected)}, found {found}{detail}"


_MISSING = object()


def partial_mismatches(expected: Any, actual: Any, path: str = "") -> list[Mismatch]:
    """Every place where ``actual`` does not contain ``expected``; empty when it matches."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [Mismatch(path, expected, actual, "not a mapping")]
        found: list[Mismatch] = []
        for key, value in expected.items():
            child = f"{path}.{key}" if path else str(key)
            if key not in actual:
                found.append(Mismatch(child, value, _Absent(), "field absent"))
            else:
                found.extend(partial_mismatches(value, actual[key], child))
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [Mismatch(path, expected, actual, "not a list")]
        return _list_mismatches(expected, actual, path)
    if _scalar_equal(expected, actual):
        return []
    return [Mismatch(path, expected, actual)]


def _list_mismatches(expected: list[Any], actual: list[Any], path: str) -> list[Mismatch]:
    unused = list(range(len(actual)))
    found: list[Mismatch] = []
    for position, item in enumerate(expected):
        hit = next((i for i in unused if not partial_mismatches(item, actual[i])), None)
        if hit is not None:
            unused.remove(hit)
            continue
        closest = _closest(item, [actual[i] for i in unused])
        note = f"no item of {len(actual)} matches" + (
            "; closest shown" if closest is not None else ""
        )
        found.append(Mismatch(f"{path}[{position}]", item, closest, note))
    return found


IDENTITY_KEYS = ("type", "name", "kind")


def _closest(item: Any, candidates: list[Any]) -> Any:
    """The candidate sharing most of the item's fields; identity fields (type, name) first."""
    if not candidates:
        return None

    def score(candidate: Any) -> tuple[int, int]:
        if not isinstance(item, dict) or not isinstance(candidate, dict):
            return (0, -len(partial_mismatches(item, candidate)))
        same = [k for k in item if k in candidate and not partial_mismatches(item[k], candidate[k])]
        return (sum(k in IDENTITY_KEYS for k in same), len(same))

    return max(candidates, key=score)


def _scalar_equal(expected: Any, actual: Any) -> bool:
    if expected == actual and type(expected) is type(actual):
        return True
    if isinstance(expected, bool) or isinstance(actual, bool):
        return str(expected).lower() == str(actual).lower()
    if isinstance(expected, int | float) and isinstance(actual, str | int | float):
        return str(expected) == str(actual)
    if isinstance(actual, int | float) and isinstance(expected, str):
        return expected == str(actual)
    return bool(expected == actual)


class _Absent:
    def __repr__(self) -> str:
        return "nothing"


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value) if not isinstance(value, _Absent) else "nothing"
    return text if len(text) <= limit else text[: limit - 3] + "..."
