"""The run's heap, kept out of the garbage collector's way.

By the time a session starts, the process holds every module pytest, its plugins and stagecheck
imported: some 60,000 container objects on a Kubernetes-level run, which live until the
process ends. Each full collection walks all of them: pytest's own at the end of a run
(looking for unraisable exceptions), the interpreter's at exit, and any the run's allocations
trigger on the way. Moving them to the permanent generation (``gc.freeze``) when the session
starts, and what the run made once it is over, lets those collections walk only what is still
young. On the 17-check feature of ``scripts/benchmark --peers`` that took 0.1 s off a 0.7 s
run (docs/benchmarks.md).
Nothing is kept alive by this: frozen objects are still freed by reference counting, only
cycles among them wait for the process to end.
"""

from __future__ import annotations

import gc

import pytest


@pytest.hookimpl(trylast=True)  # after every plugin's set-up: what they built lives as long
def pytest_sessionstart(session: pytest.Session) -> None:
    gc.freeze()


@pytest.hookimpl(trylast=True)  # after pytest's own last collection has looked for unraisables
def pytest_unconfigure(config: pytest.Config) -> None:
    gc.freeze()
