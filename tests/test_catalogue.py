"""The step catalogue is generated from the code (``scripts/steps``), and the README's examples
agree with it: every example is a sentence the vocabulary defines, and every sentence has an
example in the README."""

from __future__ import annotations

import re
import subprocess

from stagecheck.catalogue import catalogue
from tests.support import ROOT

KEYWORD = re.compile(r"^\s*(Given|When|Then|And|But) (?P<text>.+?)\s*$")


def readme_examples() -> list[str]:
    """The step lines of the README's gherkin blocks (docstrings and tables left out)."""
    steps, inside, docstring = [], False, False
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```gherkin"
            continue
        if not inside:
            continue
        if line.strip() == '"""':
            docstring = not docstring
            continue
        if not docstring and (found := KEYWORD.match(line)):
            steps.append(found["text"])
    return steps


def test_every_readme_example_is_a_sentence_of_the_vocabulary() -> None:
    entries = catalogue(ROOT)
    examples = readme_examples()
    assert len(examples) > 30
    for example in examples:
        matched = [e.sentence for e in entries if e.matches(example)]
        assert len(matched) == 1, (example, matched)


def test_every_sentence_of_the_vocabulary_has_an_example_in_the_readme() -> None:
    examples = readme_examples()
    missing = [e.sentence for e in catalogue(ROOT) if not any(e.matches(x) for x in examples)]
    assert not missing, "sentences without a README example:\n" + "\n".join(missing)


def test_the_catalogue_is_printed_in_plain_words() -> None:
    printed = subprocess.run(
        [str(ROOT / "scripts" / "steps")], capture_output=True, text=True, check=True
    ).stdout
    assert 'Given/When  the manifests in "<path>" are applied [and ready [within <within>]]' in (
        printed
    )
    assert 'the Deployment "<name>" [in namespace "<namespace>"] is available' in printed
    assert not re.search(r"\(\?|\[\^|\\d|\$$", printed, re.MULTILINE), printed  # no regex
