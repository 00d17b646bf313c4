"""Versions compared as versions, not strings: ``v1.30.2`` is later than ``1.9``, ``2.16.0`` is
later than ``2.16.0-rc.1``, and ``4.16`` means 4.16.0."""

from __future__ import annotations

import re
from dataclasses import dataclass

from stagecheck.engine.outcome import fail
from stagecheck.errors import BadArgument

_VERSION = re.compile(r"v?(?P<numbers>\d+(?:\.\d+)*)(?P<rest>[-+.~]?[0-9A-Za-z.+~-]*)?")


@dataclass(frozen=True, order=True)
class Version:
    numbers: tuple[int, ...]
    final: bool  # a release, not a pre-release (-rc.1, -alpha): later than its pre-releases
    pre: str

    def __str__(self) -> str:
        return ".".join(map(str, self.numbers)) + ("" if self.final else f"-{self.pre}")


def parse_version(text: str) -> Version:
    """The version in ``text`` (``v1.37.2``, ``2.16.0-rc.1``, ``4.16.3+abc``, ``0.7.3``)."""
    found = _VERSION.search(text.strip())
    if not found:
        raise BadArgument(f"{text!r} is not a version (write it as 2.16 or v1.30.2)")
    numbers = tuple(int(n) for n in found["numbers"].split("."))
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers = numbers[:-1]  # 4.16 == 4.16.0
    rest = (found["rest"] or "").lstrip("-.~")
    pre = rest.split("+", 1)[0]  # build metadata (+abc) does not order
    return Version(numbers, final=not pre, pre=pre)


def at_least(found: str, wanted: str) -> bool:
    return parse_version(found) >= parse_version(wanted)


def require_at_least(subject: str, found: str, wanted: str) -> str:
    """A red step unless ``found`` is ``wanted`` or later; returns ``found``."""
    minimum = parse_version(wanted)  # a bad argument is the feature's, whatever was found
    try:
        ok = parse_version(found) >= minimum
    except BadArgument:
        ok = False
    if not ok:
        raise fail(subject, f"version {wanted} or later", f"version {found or 'unknown'}")
    return found
