"""Durations as features write them: ``30s``, ``2m``, ``1m30s``, ``90 seconds``, ``2 minutes``."""

from __future__ import annotations

import re

from stagecheck.errors import BadArgument

_UNITS = {
    "ms": 0.001, "millisecond": 0.001, "milliseconds": 0.001,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
}  # fmt: skip
_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ValueError naming the text when it is not a duration."""
    position, total, parts = 0, 0.0, 0
    text = text.strip().lower()
    while position < len(text):
        match = _PART.match(text, position)
        if not match or match.group(2) not in _UNITS:
            raise BadArgument(
                f"{text!r} is not a duration: write it like 30s, 2m, 1m30s or 90 seconds"
            )
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position, parts = match.end(), parts + 1
    if parts == 0:
        raise BadArgument("an empty duration: write it like 30s, 2m, 1m30s or 90 seconds")
    return total


def format_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
