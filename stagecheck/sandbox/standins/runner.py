"""The stand-ins' process: every controller, one pass each, twice a second, until stopped.

    python -m stagecheck.sandbox.standins --state SANDBOX_STATE_DIR

After each pass it writes ``<state>/standins/heartbeat.json``: the pass number, its time, how
many writes it made, and each controller's last error. ``scripts/sandbox status`` judges the
process by it, and ``scripts/sandbox up`` waits on it until the world is settled (a pass with
no write). A controller's error is recorded and retried on the next pass, never fatal.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stagecheck.config import DEFAULT_NAMESPACE, Target
from stagecheck.kube.client import connect
from stagecheck.kube.discovery import Discovery
from stagecheck.sandbox.backends import NAMESPACE, PROCESSES
from stagecheck.sandbox.standins.base import Context, Controller
from stagecheck.sandbox.standins.container_logs import ContainerLogsStandin
from stagecheck.sandbox.standins.dataplane_kubelet import DataPlaneKubeletStandin
from stagecheck.sandbox.standins.docling import DoclingOperatorStandin
from stagecheck.sandbox.standins.kserve import KServeStandin
from stagecheck.sandbox.standins.llamastack import LlamaStackOperatorStandin
from stagecheck.sandbox.standins.mesh import mesh_standins
from stagecheck.sandbox.standins.mesh_gate import MeshGateStandin, Workload
from stagecheck.sandbox.standins.node import NodeStandin
from stagecheck.sandbox.standins.pipelines import PipelinesOperatorStandin
from stagecheck.sandbox.standins.routes import RouteStandin
from stagecheck.sandbox.standins.storage import VolumeProvisionerStandin

PASS_INTERVAL_S = 0.5
HEARTBEAT = Path("standins") / "heartbeat.json"

# The workload whose pods' calls the data plane's Llama Stack process makes
LLAMA_STACK = Workload(NAMESPACE, "app=llama-stack")


def controllers() -> list[Controller]:
    """Every stand-in, in the order a pass runs them (upstream first: storage and routes
    before the operators whose objects use them; the mesh before the operators, its webhook
    must answer before their pods are created; the model server before Llama Stack)."""
    made: list[Callable[[], Controller]] = [VolumeProvisionerStandin, RouteStandin]
    operators: list[Callable[[], Controller]] = [
        KServeStandin,
        LlamaStackOperatorStandin,
        PipelinesOperatorStandin,
        DoclingOperatorStandin,
    ]
    # The mesh gate after the pods it judges are made; the node whose pods call through it
    # after the gate. Llama Stack's data-plane process calls through the gate bound to its pods.
    gate = MeshGateStandin((LLAMA_STACK,))
    return (
        [make() for make in made]
        + [*mesh_standins()]
        + [make() for make in operators]
        + [gate, NodeStandin(gate), DataPlaneKubeletStandin(), ContainerLogsStandin()]
    )


def run(state_dir: Path, stop: threading.Event, only: Sequence[str] = ()) -> None:
    kubeconfig = state_dir / "kubeconfig"
    kube = connect(Target("sandbox", "sandbox", kubeconfig, None, DEFAULT_NAMESPACE, True))
    ctx = Context(kube, Discovery(kube), state_dir, PROCESSES)
    chosen = [c for c in controllers() if not only or c.name in only]
    heartbeat = state_dir / HEARTBEAT
    heartbeat.parent.mkdir(parents=True, exist_ok=True)
    errors: dict[str, str | None] = {}
    for controller in chosen:
        controller.start(ctx)
    try:
        number = 0
        while not stop.is_set():
            number += 1
            ctx.writes = 0
            for controller in chosen:
                try:
                    controller.reconcile(ctx)
                    errors[controller.name] = getattr(controller, "problem", None)
                except Exception as error:  # recorded, retried next pass
                    text = f"{type(error).__name__}: {error}"
                    if errors.get(controller.name) != text:
                        print(f"[{controller.name}] {text}", flush=True)
                        traceback.print_exc()
                    errors[controller.name] = text
            _write_heartbeat(heartbeat, number, ctx.writes, errors)
            stop.wait(PASS_INTERVAL_S)
    finally:
        for controller in chosen:
            controller.stop()
        kube.close()


def _write_heartbeat(path: Path, number: int, writes: int, errors: dict[str, Any]) -> None:
    record = {
        "pid": os.getpid(),
        "pass": number,
        "at": time.time(),
        "writes": writes,
        "controllers": errors,
    }
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(record))
    partial.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stagecheck.sandbox.standins")
    parser.add_argument("--state", type=Path, required=True, help="the sandbox's state folder")
    parser.add_argument("--only", action="append", default=[], help="run only this controller")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run(args.state, stop, args.only)
    return 0
