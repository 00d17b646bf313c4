"""A STAND-IN for the Kubeflow Pipelines API server behind a DSPA's route. It is not KFP.

The KFP API server cannot run here (it needs its database, Argo and the DSPA operator), so the
sandbox serves the one call the stage checks, ``GET /apis/v2beta1/healthz``, and guards it as a
DSPA's route is guarded on OpenShift: the caller's bearer token is checked against the real
sandbox API server, with a TokenReview (who is it?) and a SubjectAccessReview, the one the
proxy in front of the API server asks, by the data-science-pipelines-operator's version
(``--proxy``):

- ``oauth-proxy`` (up to v2.17, RHOAI 2.25; the default): may the user ``get`` the Route
  ``ds-pipeline-<dspa>``? (config/internal/apiserver/default/deployment.yaml.tmpl)
- ``kube-rbac-proxy`` (v2.18 and later): may the user use the subresource ``api`` of the
  DataSciencePipelinesApplication ``<dspa>``, with the verb of the HTTP method (GET -> get)?
  (config/internal/apiserver/default/kube-rbac-proxy-config.yaml.tmpl)

    200 {"status": "ok"}                 GET /apis/v1beta1/healthz, without a token: both proxies
                                         exempt it (oauth-proxy --skip-auth-regex, kube-rbac-
                                         proxy --ignore-paths), and the API server's own
                                         readiness probe asks it (the data-plane kubelet runs
                                         that probe against this process)
    401 Unauthorized                     no token, or a token the API server does not accept
    403 Forbidden                        a valid token whose user may not
    200 {"multi_user": false}            the healthz answer of a single-user KFP v2 server

oauth-proxy's refusals are JSON here (``{"error": ..., "message": ...}``); kube-rbac-proxy's
are plain text as it writes them
(``Forbidden (user=..., verb=get, resource=..., subresource=api)``).
Every answer carries ``Server: kfp-api-standin`` so that nobody mistakes it for KFP.

    python -m stagecheck.sandbox.kfp_api_standin --port P --kubeconfig K --namespace NS --dspa D
        [--proxy oauth-proxy|kube-rbac-proxy]
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
UNGUARDED_HEALTHZ = "/apis/v1beta1/healthz"  # exempt from the proxies' token check
SERVER_NAME = "kfp-api-standin"
OAUTH_PROXY, KUBE_RBAC_PROXY = "oauth-proxy", "kube-rbac-proxy"
DSPA_GROUP = "datasciencepipelinesapplications.opendatahub.io"
VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
         "DELETE": "delete"}  # fmt: skip


class Guard:
    """The route's authorization, asked of the sandbox API server."""

    def __init__(self, target: Target, dspa: str, proxy: str = OAUTH_PROXY) -> None:
        self.target, self.namespace, self.dspa, self.proxy = target, target.namespace, dspa, proxy
        self._kube: Kube | None = None  # connected at the first request: the control plane
        self._lock = threading.Lock()  # may start after this server; one client, shared

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            self._kube = connect(self.target)
        return self._kube

    def resource(self, method: str) -> dict[str, str]:
        """The SubjectAccessReview's resourceAttributes the proxy asks for ``method``."""
        if self.proxy == KUBE_RBAC_PROXY:
            return {"namespace": self.namespace, "group": DSPA_GROUP,
                    "resource": "datasciencepipelinesapplications", "subresource": "api",
                    "name": self.dspa, "verb": VERBS.get(method, method.lower())}  # fmt: skip
        return {"namespace": self.namespace, "group": "route.openshift.io", "resource": "routes",
                "name": f"ds-pipeline-{self.dspa}", "verb": "get"}  # fmt: skip

    def check(self, token: str | None, method: str = "GET") -> tuple[int, str]:
        """(HTTP status, reason): 200 when the token's user may use the route."""
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
                        "resourceAttributes": self.resource(method),
                    },
                },
            )
        if not access.get("status", {}).get("allowed"):
            asked = self.resource(method)
            if self.proxy == KUBE_RBAC_PROXY:  # its own words (brancz/kube-rbac-proxy)
                return 403, (
                    f"Forbidden (user={user.get('username')}, verb={asked['verb']}, "
                    f"resource={asked['resource']}, subresource={asked['subresource']})"
                )
            return 403, (
                f"user {user.get('username')} may not get routes.route.openshift.io "
                f"{asked['name']} in {self.namespace}"
            )
        return 200, "allowed"


def handler(guard: Guard) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = SERVER_NAME
        sys_version = ""

        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            if self.path.split("?", 1)[0] == UNGUARDED_HEALTHZ:
                self._send(200, {"status": "ok"})
                return
            header = self.headers.get("Authorization", "")
            token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
            try:
                status, reason = guard.check(token, self.command)
            except StagecheckError as error:  # the control plane is not up (yet)
                status, reason = 503, f"the token cannot be checked: {error}"
            if status != 200 and guard.proxy == KUBE_RBAC_PROXY and status in (401, 403):
                self._send_text(status, "Unauthorized" if status == 401 else reason)
            elif status != 200:
                name = {401: "Unauthorized", 403: "Forbidden"}.get(status, "Unavailable")
                self._send(status, {"error": name, "message": reason})
            elif self.path.split("?", 1)[0] == HEALTHZ:
                self._send(200, {"multi_user": False})
            else:
                self._send(404, {"error": f"{self.path}: not served by the {SERVER_NAME}"})

        def _send(self, status: int, body: dict[str, Any]) -> None:
            self._write(status, json.dumps(body).encode(), "application/json")

        def _send_text(self, status: int, text: str) -> None:
            self._write(status, f"{text}\n".encode(), "text/plain; charset=utf-8")

        def _write(self, status: int, data: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
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
    parser.add_argument(
        "--proxy",
        choices=(OAUTH_PROXY, KUBE_RBAC_PROXY),
        default=OAUTH_PROXY,
        help="the route's proxy: oauth-proxy up to DSPO v2.17 (RHOAI 2.25), kube-rbac-proxy from "
        "v2.18",
    )
    args = parser.parse_args(argv)
    target = Target(SERVER_NAME, "sandbox", args.kubeconfig, None, args.namespace, True)
    guard = Guard(target, args.dspa, args.proxy)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(guard))
    print(
        f"{SERVER_NAME} on 127.0.0.1:{args.port}, guarding route ds-pipeline-{args.dspa} "
        f"as {args.proxy} does"
    )
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
