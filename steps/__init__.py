"""This repository's own step definitions: none so far.

The vocabulary every feature is written in lives in the installed package, one module per
concern under ``stagecheck/steps/`` (kubernetes, provisioning, dataplane, pipelines,
connectivity, docling); ``scripts/steps`` lists every sentence. A sentence a repository
adds goes in a module here, named in ``pytest_plugins`` of the root ``conftest.py``. The lint
reports one that overlaps a built-in sentence as ambiguous.
"""
