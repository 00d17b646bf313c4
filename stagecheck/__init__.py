"""stagecheck: executable specifications for staged AI-platform deployments.

Layers, imports only downward:
  stagecheck.config, stagecheck.errors        configuration read once; the exception hierarchy
  stagecheck.kube                             cluster connection, REST, watches, API discovery
  stagecheck.engine                           waits, matchers, checks, evidence, failure messages
  stagecheck.plugin, .steps, .fixtures        pytest and pytest-bdd adapters (stagecheck.plugins)
  features/                                   the stage specifications
"""

import sys

__version__ = "0.1.0"

# httpx imports its command-line client (click, rich, pygments: about 50 ms of every run's
# start-up) whenever those are installed, and llama-stack-client installs them. stagecheck
# never runs that client; without it httpx defines a stub ``main`` instead.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
