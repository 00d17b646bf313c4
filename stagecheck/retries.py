"""Bounded retries for what is flaky by nature, never for a deterministic red.

Who may be retried (an opt-in; without one a scenario runs once):

- a scenario tagged ``@flaky-by-nature`` (its feature says its outcome depends on something
  that varies: a model's answer, a network path): up to ``DEFAULT_RETRIES`` more attempts,
  or ``--retries N`` when the run gives it;
- every scenario of a run with ``--retries N``: up to N more attempts, for transient failures
  only.

What may be retried is a rule on the red attempt's failure, in ``retry_reason``:

- only a failure of the scenario's steps (the call phase): a red set-up or cleanup never;
- transient, for either opt-in: the network between the run and a service (a connection
  refused or reset, a timeout: httpx's transport errors, ``TimeoutError``, ``ConnectionError``,
  ``TargetUnreachable`` but not ``ServerNotTrusted``), an API server that is overloaded or
  failing (HTTP 429, 500, 502, 503, 504), and a check of a service that saw it not answer
  (a ``StepFailure`` whose actual says "does not answer": stagecheck.engine.dataplane's words
  for a transport error);
- by nature, for a tagged scenario only: a check of a service's answer that was seen once and
  found wrong (a ``StepFailure`` with no wait and no final state: a model's answer that lacks
  the expected words, a retrieval that ranked another document first);
- never: a ``StepFailure`` of a state that was already final (``Observation.terminal``: a
  CrashLoopBackOff, a failed phase, a rolled-out workload without its sidecar), a wait that used
  its whole budget (``StepFailure.waited``: waiting again only doubles the wait), a service that
  refused the run (HTTP 401, 403, 404 in the actual), a bad spec or a test defect (an undefined
  step, ``BadArgument``, a manifest that cannot be applied, an unknown kind), the run's
  configuration or credentials (``ConfigError``, ``CredentialError``, ``Unauthorized``,
  ``Forbidden``, ``WriteRefused``), and anything else not named above.

The final verdict is the last attempt's; a scenario green after a red attempt is flaky.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
import pytest

from stagecheck.engine.outcome import StepFailure
from stagecheck.errors import KubeApiError, ServerNotTrusted, TargetUnreachable

FLAKY_TAG = "flaky-by-nature"
DEFAULT_RETRIES = 2  # a tagged scenario: three attempts in all
MAX_RETRIES = 5
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
# stagecheck.engine.dataplane._unreachable: "<endpoint> does not answer: <ErrorType>: <text>".
_NOT_ANSWERING = re.compile(r"\bdoes not answer: ")
_REFUSED = re.compile(r"\bHTTP (?:401|403|404)\b")


@dataclass(frozen=True)
class Attempting:
    """The attempt a scenario is on, set by the retry loop before each of its phases."""

    number: int  # 1-based
    limit: int  # attempts allowed in all
    retry: str | None = None  # set after a red call that will be retried: why


ATTEMPT = pytest.StashKey[Attempting]()


def attempts_allowed(tags: set[str], run_retries: int) -> int:
    """How many attempts a scenario may have: one unless it or the run opted in."""
    if FLAKY_TAG in tags:
        return 1 + (run_retries or DEFAULT_RETRIES)
    return 1 + run_retries


def retry_reason(error: BaseException, tagged: bool) -> str | None:
    """Why a red call phase may be tried again, or None when its red is deterministic."""
    if isinstance(error, StepFailure):
        return _step_failure_reason(error, tagged)
    if isinstance(error, ServerNotTrusted):
        return None
    if isinstance(error, TargetUnreachable):
        return "the API server did not answer (transient)"
    if isinstance(error, KubeApiError) and error.status in TRANSIENT_STATUS:
        return f"the API server answered HTTP {error.status} (transient)"
    if isinstance(error, httpx.TransportError | TimeoutError | ConnectionError):
        return f"{type(error).__name__} (transient)"
    return None


def _step_failure_reason(failure: StepFailure, tagged: bool) -> str | None:
    observed = failure.observation
    if observed.terminal or failure.waited is not None:
        return None  # a final state, or a wait that used its whole budget
    if _NOT_ANSWERING.search(observed.actual):
        return "a service did not answer (transient)"
    if tagged and not _REFUSED.search(observed.actual):
        return f"an answer checked once, in a scenario tagged @{FLAKY_TAG}"
    return None
