"""Versions compare as versions: numbers, then a release after its pre-releases."""

from __future__ import annotations

import pytest

from stagecheck.engine.versions import at_least, parse_version
from stagecheck.errors import BadArgument


@pytest.mark.parametrize(
    ("found", "wanted", "ok"),
    [
        ("v1.37.2", "1.30", True),
        ("1.9", "1.30", False),  # as strings "1.9" > "1.30"
        ("4.16", "4.16.0", True),
        ("4.16.0", "4.16", True),
        ("2.16.0-rc.1", "2.16.0", False),
        ("2.16.0", "2.16.0-rc.1", True),
        ("0.7.3", "0.7", True),
        ("v2.5.4+build.7", "2.5.4", True),
        ("2.5.1", "2.10", False),
    ],
)
def test_versions_compare_as_versions(found: str, wanted: str, ok: bool) -> None:
    assert at_least(found, wanted) is ok


def test_a_text_without_a_version_is_named() -> None:
    with pytest.raises(BadArgument, match="'latest' is not a version"):
        parse_version("latest")
