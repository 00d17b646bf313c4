"""Steps for the retry tests only: a red that goes away after the first attempt, counted in a
file per scenario under STAGECHECK_TEST_COUNTERS (a folder the test makes), so the test can
tell how many attempts a scenario had."""

from __future__ import annotations

from pathlib import Path

from pytest_bdd import parsers, step

from stagecheck.config import Settings
from stagecheck.engine.dataplane import served_models
from stagecheck.engine.endpoints import Endpoint
from stagecheck.engine.outcome import fail

CLOSED_PORT = "http://127.0.0.1:9"  # discard: nothing listens there on the test machines


def _count(settings: Settings, name: str) -> int:
    counter = Path(settings.environ["STAGECHECK_TEST_COUNTERS"]) / name
    attempt = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(attempt))
    return attempt


@step(parsers.re(r'the attempts are counted in "(?P<name>[^"]+)"'))
def counted(settings: Settings, name: str) -> None:
    _count(settings, name)


@step(
    parsers.re(
        r'the model answers wrong (?P<when>on the first attempt|every time) of "(?P<name>[^"]+)"'
    )
)
def wrong_answer(settings: Settings, when: str, name: str) -> None:
    attempt = _count(settings, name)
    if attempt == 1 or when == "every time":
        answer = "The capital of Zorbia is not in my documents."
        raise fail(
            "model smollm2-135m", "an answer containing 'Quandel'", f"the answer was {answer!r}"
        )


@step(parsers.re(r'the model server does not answer on the first attempt of "(?P<name>[^"]+)"'))
def not_answering(settings: Settings, name: str) -> None:
    if _count(settings, name) == 1:
        served_models(Endpoint("model", CLOSED_PORT, verify_tls=False, how="explicit URL"))
