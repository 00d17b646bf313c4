"""The pipelines API of a DSPA, reached the way its users reach it: through its Route, with a
bearer token where the route's proxy asks for one. Token values never appear in a message."""

from __future__ import annotations

import httpx

from stagecheck.config import Target
from stagecheck.engine.endpoints import BearerToken, Endpoint, Endpoints
from stagecheck.engine.outcome import fail

HEALTHZ = "/apis/v2beta1/healthz"


def api_healthy(target: Target, endpoints: Endpoints, dspa: str) -> dict[str, object]:
    """``GET /apis/v2beta1/healthz`` answers 200 with JSON; returns that JSON."""
    endpoint = endpoints.resolve("pipelines", route=f"ds-pipeline-{dspa}")
    token = endpoints.bearer_token("pipelines")
    subject = f"pipelines API of DataSciencePipelinesApplication {target.namespace}/{dspa}"
    expected = f"HTTP 200 from {endpoint.url}{HEALTHZ}"
    headers = token.header() if token else {}
    try:
        with endpoint.client() as http:
            response = http.get(HEALTHZ, headers=headers, follow_redirects=False)
    except httpx.HTTPError as error:
        raise fail(
            subject,
            expected,
            f"{endpoint.describe()} does not answer: {type(error).__name__}: {error}",
            "the route, its service or the API server pod is not serving; check the "
            "APIServerReady condition and the ds-pipeline pod",
        ) from None
    if response.status_code == 200:
        try:
            return dict(response.json())
        except ValueError:
            raise fail(
                subject, expected, f"HTTP 200 but not JSON: {response.text[:200]!r}"
            ) from None
    raise fail(
        subject,
        expected,
        f"HTTP {response.status_code}{_said(response)}",
        _cause(response, endpoint, token, dspa, target.name),
    )


def _cause(
    response: httpx.Response,
    endpoint: Endpoint,
    token: BearerToken | None,
    dspa: str,
    target: str,
) -> str | None:
    status = response.status_code
    login = status in (301, 302, 303, 307) and "oauth" in response.headers.get("location", "")
    if status == 401 or login:
        if token is None:
            return (
                "no bearer token was sent and the route requires one; set endpoint-auth "
                f'pipelines = "kubeconfig" (after oc login), "serviceaccount:NAME" or '
                f'"env:VARIABLE" for target {target!r} in stagecheck.toml'
            )
        return f"the token from {token.origin} is not accepted by the route's proxy"
    if status == 403:
        who = token.origin if token else "an anonymous caller"
        return (
            f"{who} is authenticated but may not use the route; grant it the role "
            f"ds-pipeline-user-access-{dspa} (get on routes/ds-pipeline-{dspa})"
        )
    if status in (502, 503, 504):
        return (
            f"the route answers but nothing behind it does ({endpoint.how}); the "
            f"ds-pipeline-{dspa} pod is not ready or its service has no endpoints"
        )
    return None


def _said(response: httpx.Response) -> str:
    """What the server said, without echoing anything the request carried."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict) and (message := body.get("message") or body.get("error")):
        return f": {message}"
    return ""
