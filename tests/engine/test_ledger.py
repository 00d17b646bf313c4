"""The ledger undoes everything it can: one undo that fails, of whatever kind, is told and
does not keep the others from running."""

from __future__ import annotations

from stagecheck.engine.provision import Ledger
from stagecheck.errors import KubeApiError


def test_every_undo_is_tried_and_each_problem_told() -> None:
    done: list[str] = []
    ledger = Ledger()
    ledger.record("delete ConfigMap a", lambda: done.append("a"))

    def refused() -> None:
        raise KubeApiError("DELETE", "/api/v1/namespaces/ns/secrets/b", 500, "Internal", "etcd")

    def broken() -> None:
        raise KeyError("metadata")

    ledger.record("delete Secret b", refused)
    ledger.record("restore label c", broken)
    problems = ledger.undo_all()
    assert done == ["a"]  # the oldest change, undone last, after two failed undos
    assert problems == [
        "restore label c: KeyError: 'metadata'",
        "delete Secret b: DELETE /api/v1/namespaces/ns/secrets/b -> HTTP 500 Internal: etcd",
    ]
    assert ledger.undo == []
