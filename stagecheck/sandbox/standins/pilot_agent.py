"""A stand-in for the status port of the mesh sidecar's agent (pilot-agent), for the stand-in
node's pods: NOT Istio.

Rule followed (istio/istio pilot/cmd/pilot-agent/status/server.go ``handleQuit``): ``POST
/quitquitquit`` on port 15020 from localhost stops the pod's proxy and the agent, which exit 0;
another method is refused (405). That is how a Job's container ends its own sidecar, or the pod
(and the Job) never completes.

How the sandbox stands in: the node's pods share this machine's loopback, so one listener on
``127.0.0.1:15020`` serves every sandbox's pods on the machine (the node that holds the port;
the others try for it every pass). It tells the caller by the calling socket: the processes
holding the connection's other end (found through /proc) descend from one sandbox's stand-ins
process (``--state DIR``), whose node answers on ``DIR/standin-node/pilot-agent.sock`` which
of its pods they belong to, and ends that pod's ``istio-proxy``.

Knowingly different: a real pod has its own loopback and its own agent. Only
``/quitquitquit`` is served (no readiness, no metrics).
"""

from __future__ import annotations

import http.server
import os
import socket
import socketserver
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

PORT = 15020
SOCKET = "pilot-agent.sock"  # in the node's folder: which of its pods a caller is
ASK_TIMEOUT_S = 5.0
# Which pod holds one of these pids -> "namespace/name" (None: no pod of this node)
Owner = Callable[[set[int]], str | None]


class PilotAgentStandin:
    """The quit endpoint of one node's pods: ``quit(pod)`` is called with the caller's pod."""

    def __init__(self, folder: Path, owner: Owner, quit: Callable[[str], None]) -> None:
        self._owner, self._quit = owner, quit
        self._socket_path = folder / SOCKET
        self._server: http.server.ThreadingHTTPServer | None = None
        self._local: socketserver.UnixStreamServer | None = None
        self.problem: str | None = None

    def start(self) -> None:
        """Answer this node's questions (always) and hold the shared port (when it is free)."""
        if self._local is None:
            self._serve_node()
        if self._server is not None:
            return

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                if self.path.split("?")[0] != "/quitquitquit":
                    self.send_error(404)
                    return
                if _ask_node(_holders(self.client_address[1])) is None:
                    self.send_error(403, "the caller is no pod of a sandbox's node")
                    return
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
        for server in (self._server, self._local):
            if server is not None:
                server.shutdown()
                server.server_close()
        self._server = self._local = None
        self._socket_path.unlink(missing_ok=True)

    def _serve_node(self) -> None:
        """``DIR/standin-node/pilot-agent.sock``: given the caller's pids (one line), end the
        sidecar of the pod they belong to and answer its name (nothing: no pod of this node)."""
        agent = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline().decode().split()
                pod = agent._owner({int(p) for p in line if p.isdigit()})
                if pod is not None:
                    agent._quit(pod)
                self.wfile.write(f"{pod or ''}\n".encode())

        self._socket_path.parent.mkdir(parents=True, exist_ok=True)
        self._socket_path.unlink(missing_ok=True)
        server = socketserver.ThreadingUnixStreamServer(str(self._socket_path), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="pilot-agent node", daemon=True).start()
        self._local = server


def _ask_node(pids: set[int]) -> str | None:
    """The pod (``ns/name``) whose sidecar the node of the callers' sandbox ended, if any."""
    for pid in pids:
        state = _sandbox_of(pid)
        if state is None:
            continue
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as node:
                node.settimeout(ASK_TIMEOUT_S)
                node.connect(str(state / "standin-node" / SOCKET))
                node.sendall((" ".join(map(str, sorted(pids))) + "\n").encode())
                answer = node.makefile().readline().strip()
        except OSError:
            continue
        if answer:
            return answer
    return None


def _sandbox_of(pid: int) -> Path | None:
    """The state folder of the stand-ins process ``pid`` descends from (its ``--state``)."""
    seen = 0
    while pid > 1 and seen < 64:
        seen += 1
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        words = [a.decode(errors="replace") for a in argv]
        if "stagecheck.sandbox.standins" in words and "--state" in words[:-1]:
            return Path(words[words.index("--state") + 1])
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state: the parent
    return None


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
