"""The local sandbox: the control plane with the stage-2 world in it.

    scripts/sandbox up [--fault NAME]   start the control plane (built once) and put the
                                        stage-2 world in it, healthy or with a fault
    scripts/sandbox status              every component checked for real (readiness endpoints
                                        and probes); exit 1 when any is unhealthy
    scripts/sandbox heal                restart what died or stopped answering: the control
                                        plane's components (all together, the world stays) and
                                        each data-plane service on its own port; then status
    scripts/sandbox down                stop everything; nothing is left running

``up`` on a running sandbox of the same variant heals it the same way.

Runs against it need no options: ``pytest features/stage2`` targets the sandbox by default.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stagecheck.config import DEFAULT_NAMESPACE, Settings, load_settings
from stagecheck.engine.endpoints import Endpoint
from stagecheck.engine.s3 import Credentials, ensure_bucket
from stagecheck.errors import StagecheckError
from stagecheck.sandbox.containers import ContainerDataPlane
from stagecheck.sandbox.controlplane import ControlPlane
from stagecheck.sandbox.dataplane import DataPlane
from stagecheck.sandbox.faults import FAULTS, Fault
from stagecheck.sandbox.forwards import forward_world
from stagecheck.sandbox.health import Component, report
from stagecheck.sandbox.runtime import choose_runtime, docker_engine_url, runtime_preference
from stagecheck.sandbox.standins.process import StandIns
from stagecheck.sandbox.world import apply_documents, load_world

WORLDS = Path(__file__).parent / "worlds"


BUCKET = "kfp-artifacts"  # the DSPA's bucket in the stage-2 world
# The model server and Llama Stack, started from their pods: up within their own start times
# (60 s and 120 s as processes) plus Llama Stack's startup probe's 15 s initial delay.
CONFIGURED_TIMEOUT_S = 240.0


def data_plane(settings_root: Path, cache_dir: Path, plane: ControlPlane) -> DataPlane:
    """The data plane the sandbox's state records: its containers, else its processes."""
    state = plane.state / "dataplane"
    if ContainerDataPlane.recorded(state):
        return ContainerDataPlane(cache_dir, state, settings_root)
    return DataPlane(cache_dir, state, settings_root)


def chosen_data_plane(
    settings_root: Path, cache_dir: Path, plane: ControlPlane, engine: str | None
) -> DataPlane:
    """The data plane to start: containers on the Docker ``engine``, processes without one."""
    state = plane.state / "dataplane"
    if engine is not None:
        return ContainerDataPlane(cache_dir, state, settings_root, engine=engine)
    return DataPlane(cache_dir, state, settings_root)


def start(
    root: Path,
    cache_dir: Path,
    plane: ControlPlane,
    stage: str,
    fault: Fault | None,
    engine: str | None = None,
) -> tuple[int, str]:
    """Control plane, data plane, then the world that describes them; (objects, version).
    The data plane runs as containers on the Docker ``engine`` if one is given."""
    plane.up()
    # The operators' stand-ins run before anything they reconcile exists, as operators do.
    StandIns(plane.state, root).start()
    running = data_plane(root, cache_dir, plane)
    data = chosen_data_plane(root, cache_dir, plane, engine)
    if type(running) is not type(data):
        running.stop()  # the other runtime's data plane: never both
    # The model server and Llama Stack start once their pods exist, configured by them (the
    # data-plane kubelet, standins/dataplane_kubelet.py), as a real pod's container does.
    deferred = not isinstance(data, ContainerDataPlane)
    endpoints = data.start(fault.dataplane if fault else (), defer_configured=deferred)
    # Only for the summary line: the LLSD's status reads the server itself (the stand-in).
    version = endpoints.get("llama_stack_version") or "(not answering)"
    keys = data.s3_credentials()
    # What deploy.sh does first: the artifact bucket exists before the DSPA needs it.
    store = Endpoint("s3", endpoints["services"]["s3"], True, "sandbox")
    ensure_bucket(store, Credentials(keys["access_key"], keys["secret_key"], "sandbox"), BUCKET)
    seen = {
        "s3_access_key": keys["access_key"],
        "s3_secret_key": keys["secret_key"],
    }
    count = populate(plane, stage, fault, seen, root)
    if deferred:
        endpoints = data.await_configured(CONFIGURED_TIMEOUT_S, tolerate_down=fault is not None)
        version = endpoints.get("llama_stack_version") or version
        StandIns(plane.state, root).await_settled()  # what reads Llama Stack sees it now
    kube = plane.connect()
    try:  # the same services, also reachable as a kind user reaches them
        forward_world(
            kube, DEFAULT_NAMESPACE, endpoints["services"], endpoints["down"], plane.state
        )
    finally:
        kube.close()
    (plane.state / "variant").write_text(fault.name if fault else "healthy")
    return count, version


def stop(root: Path, cache_dir: Path, plane: ControlPlane) -> bool:
    stopped_standins = StandIns(plane.state, root).stop()
    stopped_data = data_plane(root, cache_dir, plane).stop()
    stopped_control = plane.down()
    (plane.state / "variant").unlink(missing_ok=True)
    return stopped_standins or stopped_data or stopped_control


def populate(
    plane: ControlPlane,
    stage: str,
    fault: Fault | None,
    seen: dict[str, str] | None = None,
    root: Path | None = None,
) -> int:
    """Put the stage's world, healthy or with the fault, into a running control plane, one
    world file at a time, each followed by the stand-in controllers' reconciling of it (the
    mesh is in place before the workloads it injects are created, as on a real cluster)."""
    values = {**(seen or {}), **(fault.values if fault else {})}
    layers = load_world(WORLDS / stage, values=values)
    if fault is not None:
        layers = fault.change_layers(layers)
    standins = StandIns(plane.state, root or Path.cwd())
    kube = plane.connect()
    count = 0
    try:
        for documents in layers:
            count += apply_documents(kube, documents)
            if standins.pid() is not None:
                standins.await_settled()
    finally:
        kube.close()
    return count


def up(settings: Settings, stage: str, fault_name: str | None, runtime: str | None) -> int:
    started = time.monotonic()
    # Before anything starts: a container runtime without an engine is refused in milliseconds.
    preference = runtime_preference(runtime, settings.environ)
    chosen = choose_runtime(preference, settings.environ)
    engine = docker_engine_url(settings.environ) if chosen == "container" else None
    keep_temporary_files_in(settings.sandbox_dir / "tmp")
    fault = FAULTS[fault_name] if fault_name else None
    plane = ControlPlane(settings.root, settings.sandbox_dir)
    running = plane.state / "variant"
    wanted = fault.name if fault else "healthy"
    if running.exists() and running.read_text() != wanted:
        # Another variant is running: start from a fresh world, never a mix of both.
        stop(settings.root, settings.cache_dir, plane)
    count, version = start(settings.root, settings.cache_dir, plane, stage, fault, engine)
    variant = f"fault {fault.name}: {fault.description}" if fault else "healthy"
    print(
        f"sandbox up in {time.monotonic() - started:.1f}s: {stage} world applied ({count} objects) "
        f"in namespace {settings.target.namespace}, {variant}; data plane with Llama Stack "
        f"{version}\n"
        f"kubeconfig: {plane.kubeconfig}\n"
        "run the stage: .venv/bin/pytest features/stage2    stop: scripts/sandbox down"
    )
    return 0


def down(settings: Settings) -> int:
    plane = ControlPlane(settings.root, settings.sandbox_dir)
    stopped = stop(settings.root, settings.cache_dir, plane)
    print("sandbox stopped" if stopped else "sandbox was not running")
    return 0


def components(settings: Settings, plane: ControlPlane) -> list[Component]:
    """Every part of the sandbox that ``status`` checks, in start order. A new part (the
    stand-in controllers' process, for one) adds its Component here."""
    data = data_plane(settings.root, settings.cache_dir, plane)
    return [*plane.components(), StandIns(plane.state, settings.root), *data.components()]


def status(settings: Settings) -> int:
    plane = ControlPlane(settings.root, settings.sandbox_dir)
    if not plane.cluster_dir.exists():
        print("sandbox is not running: start it with scripts/sandbox up")
        return 1
    variant = plane.state / "variant"
    healthy, lines = report(components(settings, plane))
    # One verdict, first: the world's variant is not the sandbox's health.
    print(
        f"sandbox {'healthy' if healthy else 'UNHEALTHY'} (world: "
        f"{variant.read_text() if variant.exists() else 'unknown variant'}) in "
        f"{plane.state}; kubeconfig: {plane.kubeconfig}"
    )
    print("\n".join(lines))
    if healthy:
        print("sandbox healthy")
        return 0
    print("sandbox UNHEALTHY: see above; scripts/sandbox heal restarts what it can")
    return 1


def heal(settings: Settings) -> int:
    plane = ControlPlane(settings.root, settings.sandbox_dir)
    if not plane.cluster_dir.exists():
        print("sandbox is not running: start it with scripts/sandbox up")
        return 1
    restarted = plane.heal()
    standins = StandIns(plane.state, settings.root)
    if not standins.check().healthy:
        standins.stop()
        standins.start()
        restarted.append(standins.name)
    restarted += data_plane(settings.root, settings.cache_dir, plane).heal()
    print(f"restarted: {', '.join(restarted)}" if restarted else "nothing needed a restart")
    return status(settings)


def keep_temporary_files_in(folder: Path) -> None:
    """This command and everything it starts (kwokctl and the control plane, the port-forwards,
    the Kubernetes client's certificate files) write temporary files into the sandbox's own
    directory, never into the system's; the data-plane services get one folder each."""
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = None  # chosen again from TMPDIR on next use


def main(argv: list[str] | None = None) -> int:
    faults = "\n".join(f"  {f.name}: {f.description}" for f in FAULTS.values())
    parser = argparse.ArgumentParser(
        prog="sandbox",
        description=(__doc__ or "").split("\n\n")[0],
        epilog=f"fault variants (--fault NAME):\n{faults}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["up", "down", "status", "heal"])
    parser.add_argument(
        "--stage", default="stage2", choices=sorted(p.name for p in WORLDS.iterdir())
    )
    parser.add_argument("--fault", choices=sorted(FAULTS), help="start a broken variant")
    parser.add_argument(
        "--runtime",
        choices=["auto", "process", "container"],
        help="how the data plane runs: local processes (auto), or containers where Docker "
        "answers; default: STAGECHECK_RUNTIME, else auto",
    )
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the project checkout")
    args = parser.parse_args(argv)
    settings = load_settings(root=args.root.resolve(), target_option="sandbox")
    if settings.sandbox_dir.exists():  # up makes it, once it knows it will start anything
        keep_temporary_files_in(settings.sandbox_dir / "tmp")
    try:
        if args.command == "up":
            return up(settings, args.stage, args.fault, args.runtime)
        commands = {"down": down, "status": status, "heal": heal}
        return commands[args.command](settings)
    except (StagecheckError, subprocess.CalledProcessError) as error:
        print(f"sandbox {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
