"""The one table of the stage-2 world's Services and the data-plane process answering for each.

Everything that maps a Service of the world to a process of the data plane reads it: the
stand-ins' "cluster DNS" (``standins.base.Context.in_cluster_url``), the mesh gate, the
data-plane kubelet (which runs each Service's pods as that process), the container logs, the
port-forwards, and the names the data plane's recipes give in-cluster URLs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

NAMESPACE = "private-ai-demo"  # the stage namespace of the world
DSPA = "dspa"  # the world's DataSciencePipelinesApplication


@dataclass(frozen=True)
class Backend:
    role: str  # the endpoint role steps name ("model", "llama-stack", ...)
    service: str  # the Service in the world (made by GitOps or by an operator)
    namespace: str
    port: int  # the Service's port the stage calls
    process: str  # the data-plane service answering for the Service's pods
    path: str = ""  # what its in-cluster base URL ends in


BACKENDS: tuple[Backend, ...] = (
    Backend("milvus", "milvus", NAMESPACE, 19530, "milvus"),
    Backend("model", "mistral-24b-quantized-predictor", NAMESPACE, 80, "llm", "/v1"),
    Backend("llama-stack", "llama-stack-service", NAMESPACE, 8321, "llamastack"),
    Backend("pipelines", f"ds-pipeline-{DSPA}", NAMESPACE, 8888, "kfp"),
    Backend("docling", "docling-service", NAMESPACE, 5001, "docling"),
    # The DSPA's externalStorage host minio.minio.svc: outside the world, no pods of its own.
    Backend("s3", "minio", "minio", 9000, "s3"),
)
BY_SERVICE: dict[str, Backend] = {b.service: b for b in BACKENDS}
BY_ROLE: dict[str, Backend] = {b.role: b for b in BACKENDS}
BY_PROCESS: dict[str, Backend] = {b.process: b for b in BACKENDS}
# Service name -> the data-plane process behind it (the stand-ins' Context.backends)
PROCESSES: dict[str, str] = {b.service: b.process for b in BACKENDS}


def resolved(url: str, process_urls: Mapping[str, str]) -> str:
    """``url`` with a cluster Service's name (``<svc>.<ns>.svc[.cluster.local]``) as the loopback
    address of the process answering for that Service, scheme and path kept: what cluster DNS
    and the Service do for a pod. Any other name is kept, and does not resolve here."""
    parts = urlsplit(url)
    labels = (parts.hostname or "").split(".")
    if len(labels) < 3 or labels[2] != "svc":
        return url
    backend = next(
        (b for b in BACKENDS if (b.service, b.namespace) == (labels[0], labels[1])), None
    )
    address = urlsplit(process_urls.get(backend.process, "")) if backend else None
    if address is None or not address.port:
        return url
    return urlunsplit(
        (parts.scheme, f"127.0.0.1:{address.port}", parts.path, parts.query, parts.fragment)
    )


def in_cluster_url(backend: Backend) -> str:
    """``http://<service>.<ns>.svc.cluster.local[:port]<path>``, as a pod of the world calls it."""
    port = "" if backend.port == 80 else f":{backend.port}"
    return f"http://{backend.service}.{backend.namespace}.svc.cluster.local{port}{backend.path}"
