"""Evidence for a red step: the object as YAML, its recent events, the pods that belong to it
and their containers' logs; for a call to a data-plane service, the exchange.

Every object passes through ``stagecheck.redaction.redact_object`` first (Secret and ConfigMap
values, every env and args value, known secrets and credential shapes): see that module.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx
import yaml

from stagecheck.engine.checks import pod_summary
from stagecheck.engine.outcome import Evidence
from stagecheck.errors import KubeApiError, StagecheckError
from stagecheck.kube.client import JsonObject, Kube
from stagecheck.redaction import redact_object

MAX_EVENTS = 15
MAX_PODS = 10
MAX_BODY = 2000  # characters of a response body shown
MAX_LOG_LINES = 30  # of each container's log
MAX_LOG_PODS = 3


def exchange(response: httpx.Response) -> Evidence:
    """A call to a data-plane service as it went: method, URL (no userinfo; the credential
    headers are not shown), status, time taken and the first MAX_BODY characters of the body."""
    request = response.request
    try:
        took = f" in {response.elapsed.total_seconds():.2f} s"
    except RuntimeError:  # a response not read to its end has no elapsed time
        took = ""
    body = response.text
    cut = f"\n... ({len(body) - MAX_BODY} more characters)" if len(body) > MAX_BODY else ""
    kind = response.headers.get("content-type", "no content-type")
    lines = [
        f"{request.method} {_shown_url(request.url)}",
        f"-> HTTP {response.status_code} {response.reason_phrase}{took} ({kind})",
        "",
        body[:MAX_BODY] + cut,
    ]
    return Evidence(name=f"{request.method} {request.url.path}", text="\n".join(lines))


def unanswered(method: str, url: str, error: Exception, seconds: float) -> Evidence:
    """A call that got no answer: what was asked, the transport's error, the time spent."""
    text = f"{method} {_shown_url(httpx.URL(url))}\n-> no answer after {seconds:.2f} s: "
    return Evidence(name=f"{method} {httpx.URL(url).path}", text=text + repr(error))


def _shown_url(url: httpx.URL) -> str:
    return str(url.copy_with(username=None, password=None)) if url.userinfo else str(url)


def object_yaml(obj: JsonObject) -> Evidence:
    meta = obj.get("metadata", {})
    name = f"{obj.get('kind', 'object')} {meta.get('namespace', '')}/{meta.get('name')}".replace(
        " /", " "
    )
    return Evidence(
        name=f"{name}.yaml",
        text=yaml.safe_dump(redact_object(obj), sort_keys=False),
        media_type="application/yaml",
    )


def events_for(kube: Kube, namespace: str | None, names: Iterable[str]) -> Evidence | None:
    """Recent events about the named objects (the first MAX_PODS of them), newest last: one
    request per object, by field selector, whatever else the namespace holds."""
    if not namespace:
        return None
    wanted = list(dict.fromkeys(names))[:MAX_PODS]
    events: list[JsonObject] = []
    for name in wanted:
        try:
            listing = kube.get(
                f"/api/v1/namespaces/{namespace}/events",
                params={"fieldSelector": f"involvedObject.name={name}"},
            )
        except KubeApiError as error:  # noted in the evidence, never the step's failure
            return Evidence(name="events", text=f"(events not available: {error})")
        events.extend(listing.get("items", []))
    if not events:
        return Evidence(name="events", text=f"no events for {', '.join(sorted(wanted))}")
    events.sort(key=_event_time)
    lines = [
        f"{_event_time(e)}  {e.get('type', '')}  {e.get('reason', '')}  "
        f"{e.get('involvedObject', {}).get('kind', '')}/{e.get('involvedObject', {}).get('name')}"
        f"  {e.get('message', '').strip()}" + (f" (x{e['count']})" if e.get("count", 1) > 1 else "")
        for e in events[-MAX_EVENTS:]
    ]
    return Evidence(name="events", text="\n".join(lines))


def pod_logs(kube: Kube, pods: list[JsonObject]) -> Evidence | None:
    """The last lines of each container's log of the first pods (the caller puts the not-ready
    first), by pod and container, and the previous container's after a restart: what
    ``oc logs`` and ``oc logs -p`` would show. A log that cannot be read says why."""
    sections = []
    for pod in pods[:MAX_LOG_PODS]:
        meta, spec = pod.get("metadata", {}), pod.get("spec", {})
        status = pod.get("status", {})
        states = {
            s.get("name"): s
            for s in (status.get("initContainerStatuses") or [])
            + (status.get("containerStatuses") or [])
        }
        path = f"/api/v1/namespaces/{meta.get('namespace')}/pods/{meta.get('name')}/log"
        for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            name = container.get("name", "")
            state = states.get(name) or {}
            runs = [True] if state.get("restartCount") or state.get("lastState") else []
            for previous in [*runs, False]:
                what = "previous container" if previous else "container"
                text = _log(kube, path, name, previous)
                sections.append(f"== pod {meta.get('name')}, {what} {name}\n{text}")
    if not sections:
        return None
    # An attachment (report, status page), not a terminal section: logs are long.
    return Evidence(name="container logs", text="\n\n".join(sections), media_type="text/x-log")


def _log(kube: Kube, path: str, container: str, previous: bool) -> str:
    params = {"container": container, "tailLines": str(MAX_LOG_LINES)}
    if previous:
        params["previous"] = "true"
    try:
        text = kube.get_text(path, params).rstrip()
    except StagecheckError as error:  # noted in the evidence, never the step's failure
        said = error.api_message if isinstance(error, KubeApiError) else str(error)
        return f"(log not available: {said.strip()[:300]})"
    return text or "(empty)"


def pods_status(pods: list[JsonObject]) -> Evidence | None:
    if not pods:
        return None
    lines = [pod_summary(p)[0] for p in pods[:MAX_PODS]]
    if len(pods) > MAX_PODS:
        lines.append(f"... and {len(pods) - MAX_PODS} more")
    return Evidence(name="related pods", text="\n".join(lines))


def _event_time(event: JsonObject) -> str:
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("metadata", {}).get("creationTimestamp")
        or ""
    )
