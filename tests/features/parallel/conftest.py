"""A step for the parallel-run tests only: the worker process running it dies."""

from __future__ import annotations

import os

from pytest_bdd import step


@step("the process running this scenario dies")
def dies() -> None:
    os._exit(3)
