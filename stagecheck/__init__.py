"""stagecheck: executable specifications for staged AI-platform deployments.

Layers, imports only downward:
  stagecheck.config, stagecheck.errors        configuration read once; the exception hierarchy
  stagecheck.kube                             cluster connection, REST, watches, API discovery
  stagecheck.engine                           waits, matchers, checks, evidence, failure messages
  stagecheck.plugin, .steps, .fixtures        pytest and pytest-bdd adapters (stagecheck.plugins)
  features/                                   the stage specifications
"""

__version__ = "0.1.0"
