"""The run's own mesh sidecar, when the run is a pod that joined the mesh: ended with the run.

A Job whose pod has an ``istio-proxy`` sidecar does not complete while the proxy runs, and the
in-cluster check must join the mesh to reach the stage's mTLS-only Services (a plaintext call
from outside the mesh is reset). Istio's pilot-agent stops the proxy, and itself, on ``POST
http://localhost:15020/quitquitquit`` (POST only, from localhost only; istio/istio
pilot/cmd/pilot-agent/status/server.go ``handleQuit``). ``--quit-mesh-sidecar`` asks for it once
the run has written its reports; without a sidecar nothing answers there and the run says so.
"""

from __future__ import annotations

import urllib.error
import urllib.request

QUIT_URL = "http://127.0.0.1:15020/quitquitquit"
QUIT_TIMEOUT_S = 5.0
# The pod's own agent: never through a proxy the environment names
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def quit_own_sidecar(url: str = QUIT_URL) -> str:
    """Ask the pod's mesh agent to stop its proxy; what happened, in one sentence."""
    try:
        request = urllib.request.Request(url, method="POST", data=b"")
        with _OPENER.open(request, timeout=QUIT_TIMEOUT_S) as reply:
            return f"the pod's mesh sidecar was asked to stop ({url} answered {reply.status})"
    except urllib.error.HTTPError as error:
        return f"the pod's mesh sidecar refused to stop ({url} answered {error.code})"
    except OSError as error:
        return f"no mesh sidecar to stop: nothing answers {url} ({error})"
