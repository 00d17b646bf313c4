"""The HTTP calls a stand-in makes to the server its operator manages, as the operator makes them.

An operator that asks its server something (llama-stack-k8s-operator's ``GET /v1/providers``,
Knative's readiness probe of the model server) reaches the in-cluster Service; here
``Context.in_cluster_url`` turns that URL into the loopback process answering for it. The
answers are kept for ``REFRESH_S`` so a pass twice a second does not hammer the server (the
real operators call on their own reconcile schedule, not twice a second).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from stagecheck.sandbox.standins.base import Context

REFRESH_S = 3.0
# No proxy: the call goes to the loopback process, as cluster DNS would resolve it
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Answer:
    """What a GET returned: the parsed JSON body of a 200, else why not (``error``)."""

    body: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def get_json(url: str, timeout_s: float) -> Answer:
    try:
        with _OPENER.open(urllib.request.Request(url), timeout=timeout_s) as reply:
            raw = reply.read()
    except urllib.error.HTTPError as error:
        return Answer(error=f"returned status code {error.code}")
    except (OSError, ValueError) as error:
        return Answer(error=f"{type(error).__name__}: {error}")
    try:
        return Answer(body=json.loads(raw))
    except ValueError as error:
        return Answer(error=f"bad JSON: {error}")


@dataclass
class Calls:
    """GETs of in-cluster URLs, each answer kept for ``refresh_s``."""

    refresh_s: float = REFRESH_S
    _kept: dict[str, tuple[float, Answer]] = field(default_factory=dict)

    def get(self, ctx: Context, in_cluster: str, timeout_s: float) -> Answer:
        kept = self._kept.get(in_cluster)
        if kept is not None and time.monotonic() - kept[0] < self.refresh_s:
            return kept[1]
        local = ctx.in_cluster_url(in_cluster)
        answer = (
            get_json(local, timeout_s)
            if local is not None
            else Answer(error=f"no process answers for {in_cluster} in the sandbox")
        )
        self._kept[in_cluster] = (time.monotonic(), answer)
        return answer
