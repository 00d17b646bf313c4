"""The data plane's services, one recipe per module, in the plan's order: the order they are
launched in (a service with ``after`` waits for those first) and stopped in reverse.

    milvus      milvus.py       llm         llm.py          embeddings  embeddings.py
    docling     docling.py      s3          s3.py           kfp         kfp.py
    llamastack  llamastack.py
"""

from __future__ import annotations

from collections.abc import Callable

from stagecheck.sandbox.dataplane.plan import Service
from stagecheck.sandbox.dataplane.services import (
    docling,
    embeddings,
    kfp,
    llamastack,
    llm,
    milvus,
    s3,
)

PLAN: tuple[Service, ...] = tuple(
    module.SERVICE for module in (milvus, llm, embeddings, docling, s3, kfp, llamastack)
)
BY_NAME: dict[str, Service] = {service.name: service for service in PLAN}
SERVICES: tuple[str, ...] = tuple(BY_NAME)
PROBES: dict[str, Callable[[str], bool]] = {s.name: s.probe for s in PLAN}
READY_TIMEOUT_S: dict[str, float] = {s.name: s.ready_timeout_s for s in PLAN}
