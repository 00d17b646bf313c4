"""The pytest11 entry point: every part of stagecheck pytest loads, in the order they register.

``pip install stagecheck`` (a wheel, or its git URL) makes any repository's ``pytest`` load
these, so a stage repository needs only ``features/`` and ``stagecheck.toml``: no conftest.
pytest calls hooks of later-registered plugins first, so the reporting plugin is listed before
``stagecheck.plugin`` (its ``pytest_configure`` then runs after the settings are read).
"""

pytest_plugins = [
    "stagecheck.reporting.plugin",
    "stagecheck.plugin",
    "stagecheck.heap",
    "stagecheck.fixtures.cluster",
    "stagecheck.fixtures.provisioning",
    "stagecheck.fixtures.dataplane",
    "stagecheck.steps.kubernetes",
    "stagecheck.steps.provisioning",
    "stagecheck.steps.dataplane",
    "stagecheck.steps.pipelines",
    "stagecheck.steps.connectivity",
    "stagecheck.steps.docling",
]
