"""Root conftest: this repository's own steps and fixtures, beside the installed vocabulary.

stagecheck's plugin, fixtures and sentences come from the installed package, through its
pytest11 entry point (``stagecheck.plugins``); a stage repository needs no conftest at all.
A module of sentences or fixtures a repository adds of its own goes in ``steps/`` or
``fixtures/`` and is named here (``"steps.my_sentences"``); ``scripts/lint-features`` loads it
too, and names a sentence that overlaps a built-in one as ambiguous.
"""

pytest_plugins: list[str] = []
