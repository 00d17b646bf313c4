"""A STAND-IN for the Kubeflow Pipelines API server behind a DSPA's route. It is not KFP.

The KFP API server cannot run here (it needs its database, Argo and the DSPA operator), so the
sandbox serves the one call the stage checks, ``GET /apis/v2beta1/healthz``, and guards it as a
DSPA's route is guarded on OpenShift: the caller's bearer token is checked against the real
sandbox API server, with a TokenReview (who is it?) and a SubjectAccessReview (may it ``get``
the Route ``ds-pipeline-<dspa>``?), the check OpenShift's proxy in front of the API server makes.

    401 {"error": "Unauthorized", ...}   no token, or a token the API server does not accept
    403 {"error": "Forbidden", ...}      a valid token whose user may not get the Route
    200 {"multi_user": false}            the healthz answer of a single-user KFP v2 server

Every answer carries ``Server: kfp-api-standin`` so that nobody mistakes it for KFP.

    python -m stagecheck.sandbox.kfp_api_standin --port P --kubeconfig K --namespace NS --dspa D
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from stagecheck.config import Target
from stagecheck.errors import StagecheckError
from stagecheck.kube.client import Kube, connect

HEALTHZ = "/apis/v2beta1/healthz"
SERVER_NAME = "kfp-api-standin"


class Guard:
    """The route's authorization, asked of the sandbox API server."""

    def __init__(self, target: Target, route: str) -> None:
        self.target, self.namespace, self.route = target, target.namespace, route
        self._kube: Kube | None = None  # connected at the first request: the control plane
        self._lock = threading.Lock()  # may start after this server; one client, shared

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            self._kube = connect(self.target)
        return self._kube

    def check(self, token: str | None) -> tuple[int, str]:
        """(HTTP status, reason): 200 when the token's user may get the route."""
        if not token:
            return 401, "no bearer token"
        with self._lock:
            review = self.kube.create(
                "/apis/authentication.k8s.io/v1/tokenreviews",
                {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                 "spec": {"token": token}},
            )  # fmt: skip
        status = review.get("status", {})
        if not status.get("authenticated"):
            return 401, f"token not accepted: {status.get('error', 'unauthenticated')}"
        user = status["user"]
        with self._lock:
            access = self.kube.create(
                "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                {
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SubjectAccessReview",
                    "spec": {
                        "user": user.get("username"),
                        "groups": user.get("groups", []),
                        "uid": user.get("uid"),
                        "resourceAttributes": {
                            "namespace": self.namespace,
                            "group": "route.openshift.io",
                            "resource": "routes",
                            "name": self.route,
                            "verb": "get",
                        },
                    },
                },
            )
        if not access.get("status", {}).get("allowed"):
            return 403, (
                f"user {user.get('username')} may not get routes.route.openshift.io "
                f"{self.route} in {self.namespace}"
            )
        return 200, "allowed"


def handler(guard: Guard) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = SERVER_NAME
        sys_version = ""

        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            header = self.headers.get("Authorization", "")
            token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
            try:
                status, reason = guard.check(token)
            except StagecheckError as error:  # the control plane is not up (yet)
                status, reason = 503, f"the token cannot be checked: {error}"
            if status != 200:
                name = {401: "Unauthorized", 403: "Forbidden"}.get(status, "Unavailable")
                self._send(status, {"error": name, "message": reason})
            elif self.path.split("?", 1)[0] == HEALTHZ:
                self._send(200, {"multi_user": False})
            else:
                self._send(404, {"error": f"{self.path}: not served by the {SERVER_NAME}"})

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            # Method, path and status only: the Authorization header is never logged.
            print(f"{self.command} {self.path.split('?', 1)[0]} -> {args[1]}", flush=True)

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--dspa", default="dspa")
    args = parser.parse_args(argv)
    target = Target(SERVER_NAME, "sandbox", args.kubeconfig, None, args.namespace, True)
    guard = Guard(target, f"ds-pipeline-{args.dspa}")
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(guard))
    print(f"{SERVER_NAME} on 127.0.0.1:{args.port}, guarding route ds-pipeline-{args.dspa}")
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
