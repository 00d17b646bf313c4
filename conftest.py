"""Root conftest: wires stagecheck's plugin, fixtures and step vocabulary into every run."""

pytest_plugins = [
    "stagecheck.reporting.plugin",  # first: its pytest_configure runs after stagecheck.plugin's
    "stagecheck.plugin",
    "fixtures.cluster",
    "fixtures.provisioning",
    "fixtures.dataplane",
    "steps.kubernetes",
    "steps.provisioning",
    "steps.dataplane",
    "steps.pipelines",
    "steps.connectivity",
    "steps.docling",
]
