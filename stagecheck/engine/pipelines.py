"""The pipelines API of a DSPA, reached the way its users reach it: through its Route, with a
bearer token where the route's proxy asks for one. Token values never appear in a message.

Which access the route's proxy asks for depends on the data-science-pipelines-operator's
version, read from what the cluster runs, the proxy container of Deployment
``ds-pipeline-<dspa>``:

- up to v2.17 (RHOAI 2.25) ``oauth-proxy`` asks a SubjectAccessReview for ``get`` on
  ``routes/ds-pipeline-<dspa>`` (route.openshift.io; config/internal/apiserver/default/
  deployment.yaml.tmpl, ``--openshift-delegate-urls``);
- from v2.18 ``kube-rbac-proxy`` asks for the subresource ``api`` of the
  DataSciencePipelinesApplication ``<dspa>`` (datasciencepipelinesapplications.opendatahub.io),
  with the verb of the HTTP method (config/internal/apiserver/default/
  kube-rbac-proxy-config.yaml.tmpl).

Either way the operator's Role ``ds-pipeline-user-access-<dspa>`` grants it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from stagecheck.config import Target
from stagecheck.engine.endpoints import BearerToken, Endpoint, Endpoints, evidence_of
from stagecheck.engine.kubernetes import Cluster
from stagecheck.engine.outcome import fail
from stagecheck.errors import KubeApiError

HEALTHZ = "/apis/v2beta1/healthz"
OAUTH_PROXY, KUBE_RBAC_PROXY = "oauth-proxy", "kube-rbac-proxy"
DSPA_GROUP = "datasciencepipelinesapplications.opendatahub.io"


@dataclass(frozen=True)
class RouteProxy:
    """The proxy in front of a DSPA's API server, as far as the cluster shows it."""

    container: str | None  # OAUTH_PROXY, KUBE_RBAC_PROXY, or None when not seen
    seen: str  # where it was seen, or why it was not

    def access(self, dspa: str) -> str:
        """The access the proxy asks for a GET, and the rule applied."""
        routes = f"get on routes/ds-pipeline-{dspa} (route.openshift.io)"
        api = f"get on datasciencepipelinesapplications/api {dspa} ({DSPA_GROUP})"
        if self.container == OAUTH_PROXY:
            return (
                f"{routes}, which its oauth-proxy asks (data-science-pipelines-operator up to "
                f"v2.17, RHOAI 2.25; {self.seen})"
            )
        if self.container == KUBE_RBAC_PROXY:
            return (
                f"{api}, which its kube-rbac-proxy asks (data-science-pipelines-operator v2.18 "
                f"and later; {self.seen})"
            )
        return (
            f"up to v2.17 of data-science-pipelines-operator {routes} (oauth-proxy), from v2.18 "
            f"{api} (kube-rbac-proxy); which one runs is not known: {self.seen}"
        )


def route_proxy(cluster: Cluster, namespace: str, dspa: str) -> RouteProxy:
    name = f"ds-pipeline-{dspa}"
    try:
        deployment = cluster.kube.get_or_none(
            f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
        )
    except KubeApiError as error:
        return RouteProxy(None, f"Deployment {namespace}/{name} cannot be read: {error}")
    if deployment is None:
        return RouteProxy(None, f"there is no Deployment {namespace}/{name}")
    containers = deployment["spec"]["template"]["spec"].get("containers", [])
    names = [c.get("name") for c in containers]
    for proxy in (KUBE_RBAC_PROXY, OAUTH_PROXY):
        if proxy in names:
            return RouteProxy(proxy, f"seen: container {proxy} of Deployment {namespace}/{name}")
    listed = ", ".join(str(n) for n in names) or "none"
    return RouteProxy(None, f"Deployment {namespace}/{name} has neither (containers: {listed})")


def api_healthy(
    target: Target, endpoints: Endpoints, cluster: Cluster, dspa: str
) -> dict[str, object]:
    """``GET /apis/v2beta1/healthz`` answers 200 with JSON; returns that JSON."""
    endpoint = endpoints.resolve("pipelines", route=f"ds-pipeline-{dspa}")
    with evidence_of(endpoint):
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
            _cause(
                response,
                endpoint,
                token,
                dspa,
                target.name,
                lambda: route_proxy(cluster, target.namespace, dspa),
            ),
        )


def _cause(
    response: httpx.Response,
    endpoint: Endpoint,
    token: BearerToken | None,
    dspa: str,
    target: str,
    proxy: Callable[[], RouteProxy],
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
            f"ds-pipeline-user-access-{dspa}, which grants {proxy().access(dspa)}"
        )
    if status in (502, 503, 504):
        return (
            f"the route answers but nothing behind it does ({endpoint.how}); the "
            f"ds-pipeline-{dspa} pod is not ready or its service has no endpoints"
        )
    return None


def _said(response: httpx.Response) -> str:
    """What the server said, without echoing anything the request carried (kube-rbac-proxy
    answers in plain text: ``Forbidden (user=..., verb=get, resource=..., subresource=api)``)."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip().splitlines()
        plain = response.headers.get("content-type", "").startswith("text/plain")
        return f": {text[0][:200]}" if plain and text else ""
    if isinstance(body, dict) and (message := body.get("message") or body.get("error")):
        return f": {message}"
    return ""
