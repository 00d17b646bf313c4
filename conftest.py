"""Root conftest: wires stagecheck's plugin, fixtures and step vocabulary into every run."""

pytest_plugins = [
    "stagecheck.plugin",
    "fixtures.cluster",
    "fixtures.provisioning",
    "steps.kubernetes",
    "steps.provisioning",
]
