"""A stand-in for the status port of the mesh sidecar's agent (pilot-agent), for the stand-in
node's pods: NOT Istio.

Rule followed (istio/istio pilot/cmd/pilot-agent/status/server.go ``handleQuit``): ``POST
/quitquitquit`` on port 15020 from localhost stops the pod's proxy and the agent, which exit 0;
another method is refused (405). That is how a Job's container ends its own sidecar, or the pod
(and the Job) never completes.

How the sandbox stands in: the node's pods share this machine's loopback, so one listener on
``127.0.0.1:15020`` serves them all and tells the caller's pod by the calling socket (the
process that holds the connection's other end, found through /proc, is one of the pod's).
The node is told which pod asked, and ends that pod's ``istio-proxy``.

Knowingly different: a real pod has its own loopback and its own agent; here a second sandbox
on the same machine cannot have the port (its pods' quit calls then find nothing listening,
as in a pod without a sidecar). Only ``/quitquitquit`` is served (no readiness, no metrics).
"""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

PORT = 15020
# Which pod holds one of these pids -> "namespace/name" (None: no pod of this node)
Owner = Callable[[set[int]], str | None]


class PilotAgentStandin:
    """The shared quit endpoint; ``quit(pod)`` is called with the caller's pod."""

    def __init__(self, owner: Owner, quit: Callable[[str], None]) -> None:
        self._owner, self._quit = owner, quit
        self._server: http.server.ThreadingHTTPServer | None = None
        self.problem: str | None = None

    def start(self) -> None:
        agent = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                if self.path.split("?")[0] != "/quitquitquit":
                    self.send_error(404)
                    return
                pod = agent._owner(_holders(self.client_address[1]))
                if pod is None:
                    self.send_error(403, "the caller is no pod of this node")
                    return
                agent._quit(pod)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802
                self.send_error(405, "quitquitquit takes POST only")

            def log_message(self, format: str, *args: object) -> None:
                return None

        try:
            server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
        except OSError as error:
            self.problem = f"the mesh agent's port 127.0.0.1:{PORT} is taken ({error})"
            return
        self.problem = None
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="pilot-agent", daemon=True).start()
        self._server = server

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def family(pids: Iterable[int]) -> set[int]:
    """The processes and all their descendants (a container's process tree)."""
    found: set[int] = set()
    todo = [p for p in pids if p]
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found.add(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                todo += [
                    int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()
                ]
            except OSError:
                continue
    return found


def _holders(peer_port: int) -> set[int]:
    """The pids holding the loopback socket whose local port is ``peer_port`` (the caller's end
    of a connection to the agent)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if (
                int(local.rsplit(":", 1)[1], 16) == peer_port
                and int(remote.rsplit(":", 1)[1], 16) == PORT
            ):
                inodes.add(f"socket:[{inode}]")
    holders = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    holders.add(int(pid))
                    break
            except OSError:
                continue
    return holders
