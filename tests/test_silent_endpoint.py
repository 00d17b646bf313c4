"""Bounded time: a service that accepts connections and never answers costs a run one
endpoint budget (the target's endpoint-timeout), not one per scenario: the first call that
times out marks the endpoint unresponsive, and later steps on it are red at once, naming it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagecheck.sandbox.controlplane import ControlPlane
from tests.support import ROOT, run_pytest, two_context_kubeconfig

FEATURE = str(ROOT / "tests/features/silent/model.feature")
BUDGET_S = 2.0


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP server that accepts every connection, reads, and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:  # closed: the test is over
                return
            held.append(connection)

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()
        for connection in held:
            connection.close()


def test_a_run_with_a_silent_service_costs_one_budget_not_one_per_scenario(
    control_plane: ControlPlane, silent_port: int, tmp_path: Path
) -> None:
    kubeconfig, context = two_context_kubeconfig(control_plane, tmp_path / "kubeconfig")
    config = tmp_path / "stagecheck.toml"
    config.write_text(
        "[targets.silent]\n"
        'type = "cluster"\n'
        f'context = "{context}"\n'
        f'kubeconfig = "{kubeconfig}"\n'
        f'endpoints = {{ model = "http://127.0.0.1:{silent_port}/v1" }}\n'
        f"endpoint-timeout = {BUDGET_S}\n"
        'vars = { model = "m" }\n'
    )
    run = run_pytest(["--target", "silent", FEATURE], tmp_path, {"STAGECHECK_CONFIG": str(config)})
    results = list(run.scenarios.values())
    assert len(results) == 4 and all(r.outcome == "failed" for r in results), run.output[-3000:]
    first, *later = (run.result(n) for n in (
        "The model server lists the stage model",
        "The stage model answers",
        "The stage model answers again",
        "The model server lists the stage model again",
    ))  # fmt: skip
    assert "does not answer: ReadTimeout" in first.message, first.message
    for result in later:
        assert "not asked: model endpoint" in result.message, result.message
        assert f"it did not answer GET /v1/models within {BUDGET_S:.0f}." in result.message
    spent = sum(r.seconds for r in results)
    assert spent < 2 * BUDGET_S, f"the scenarios took {spent:.1f} s in all"
