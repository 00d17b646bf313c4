"""A URL answers: a plain HTTP check of any address a stage publishes (a Route's host, a
console, a health page), with TLS verified and the target's endpoint-timeout per call."""

from __future__ import annotations

import time

import httpx

from stagecheck.engine.evidence import exchange, unanswered
from stagecheck.engine.outcome import Evidence, fail
from stagecheck.engine.wait import polled

RETRY_PAUSE_S = 1.0


def answers(url: str, status: int, timeout_s: float, within: float | None) -> None:
    """``GET url`` answers ``status`` (redirects not followed: a 302 to a login page is what
    it is); with ``within``, asked again every second until it does or the time is up."""

    def attempt() -> None:
        actual, seen = _ask(url, timeout_s)
        if actual != f"HTTP {status}":
            raise fail(f"URL {url}", f"HTTP {status}", actual, evidence=[seen])

    polled(attempt, within, RETRY_PAUSE_S)


def _ask(url: str, timeout_s: float) -> tuple[str, Evidence]:
    started = time.monotonic()
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=False) as http:
            response = http.get(url)
    except httpx.HTTPError as error:
        took = time.monotonic() - started
        return f"no answer: {type(error).__name__}: {error}", unanswered("GET", url, error, took)
    return f"HTTP {response.status_code}", exchange(response)
