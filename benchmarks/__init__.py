"""The benchmark harness, ``scripts/benchmark``: the repository's test bed, not part of the
installed stagecheck. It uses stagecheck and its sandbox; nothing in ``stagecheck`` imports it."""
