"""Port-forwards into the sandbox world, so that the stage's services are reached as a kind
user reaches them: ``port-forward:service/NAME:PORT`` through the API server to a pod, where
kwok (standing in for the kubelet) forwards the pod's port to the data-plane service.

For each pod behind a Service below, a kwok PortForward resource named after the pod maps the
Service's target port to the loopback port of the data-plane service. ``forwards.json`` in the
sandbox directory maps each endpoint role to its ``port-forward:`` spec; the sandbox target
uses it when ``STAGECHECK_ENDPOINTS_VIA=port-forward``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from stagecheck.errors import EndpointError, PortForwardError
from stagecheck.kube.client import Kube
from stagecheck.sandbox.backends import BACKENDS
from stagecheck.sandbox.world import apply_documents

FORWARDS_FILE = "forwards.json"
PODS_TIMEOUT_S = 30.0
FORWARD_TIMEOUT_S = 10.0


def forward_world(
    kube: Kube,
    namespace: str,
    services: Mapping[str, str],
    down: Collection[str],
    state_dir: Path,
) -> dict[str, str]:
    """Create the PortForward resources and write ``forwards.json``; returns role -> spec.
    Each forward is proven to work, except to a data-plane service that is down (a fault)."""
    specs: dict[str, str] = {}
    documents: list[dict[str, Any]] = []
    checks: list[tuple[str, int]] = []
    for entry in BACKENDS:
        if entry.namespace != namespace:
            continue  # outside the world (the DSPA's external store): nothing to forward
        role, service_name, port, backend = entry.role, entry.service, entry.port, entry.process
        url = urlsplit(services.get(backend, ""))
        specs[role] = f"port-forward:service/{service_name}:{port}{url.path.rstrip('/')}"
        service = kube.get_or_none(f"/api/v1/namespaces/{namespace}/services/{service_name}")
        if service is None or not url.port:
            # An operator that never made its Service (a fault stops it first) leaves nothing
            # to forward to: the endpoint then fails where the stage reaches it.
            continue
        chosen = next(p for p in service["spec"]["ports"] if p["port"] == port)
        target = {"address": url.hostname, "port": url.port}
        for pod in _pods(kube, namespace, service["spec"]["selector"], service_name):
            pod_port = _pod_port(pod, chosen.get("targetPort", chosen["port"]))
            if backend not in down:
                checks.append((pod["metadata"]["name"], pod_port))
            documents.append(
                {
                    "apiVersion": "kwok.x-k8s.io/v1alpha1",
                    "kind": "PortForward",
                    "metadata": {"name": pod["metadata"]["name"], "namespace": namespace},
                    "spec": {"forwards": [{"ports": [pod_port], "target": target}]},
                }
            )
    apply_documents(kube, documents)
    for pod_name, port in checks:
        _await_forward(kube, namespace, pod_name, port)
    (state_dir / FORWARDS_FILE).write_text(json.dumps(specs, indent=2) + "\n")
    return specs


def _await_forward(kube: Kube, namespace: str, pod: str, port: int) -> None:
    """Until kwok, which learns of PortForward resources by watching, forwards the port."""
    deadline = time.monotonic() + FORWARD_TIMEOUT_S
    forward = kube.port_forward(namespace, pod, port)
    try:
        while True:
            try:
                forward.check()
                return
            except PortForwardError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        forward.close()


def _pod_port(pod: dict[str, Any], target: int | str) -> int:
    """A Service's targetPort on this pod: a number, or the name of a container port (the
    operators' Services name theirs, e.g. DSPO's ``http``)."""
    if isinstance(target, int) or str(target).isdigit():
        return int(target)
    for container in pod["spec"]["containers"]:
        for declared in container.get("ports") or []:
            if declared.get("name") == target:
                return int(declared["containerPort"])
    raise EndpointError(f"pod {pod['metadata']['name']} declares no port named {target}")


def _pods(
    kube: Kube, namespace: str, selector: Mapping[str, str], service: str
) -> list[dict[str, Any]]:
    """The pods behind the Service, once its Deployment has created them."""
    labels = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    deadline = time.monotonic() + PODS_TIMEOUT_S
    while True:
        pods = kube.get(f"/api/v1/namespaces/{namespace}/pods", params={"labelSelector": labels})
        if pods["items"]:
            return list(pods["items"])
        if time.monotonic() > deadline:
            raise EndpointError(
                f"no pod behind Service {namespace}/{service} ({labels}) after "
                f"{PODS_TIMEOUT_S:.0f}s: nothing to port-forward to"
            )
        time.sleep(0.2)
