"""Figures for the sandbox's speed and memory goals, printed, never asserted:

    control plane   warm `up` (goal: seconds)
    sandbox         warm `up` from nothing to healthy (goal: under 60 s), RSS per process
    stage 2         wall time of `pytest features/stage2`, loopback and through port-forwards
    no sandbox      time to the one-sentence refusal when nothing runs

    scripts/benchmark [--runs N]
    scripts/benchmark --peers [--rounds N] [--only PART,...]   against kubectl and chainsaw
                    (benchmarks.bench_peers; writes reports/bench.md and bench.png)

It uses a private state directory (a running sandbox is left alone) and stops what it started.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from benchmarks import bench_peers
from stagecheck.config import load_settings
from stagecheck.sandbox.cli import data_plane, start, stop
from stagecheck.sandbox.controlplane import ControlPlane

FEATURES = "features/stage2"


def timed(argv: list[str], root: Path, env: dict[str, str]) -> tuple[float, int]:
    started = time.monotonic()
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, check=False)
    return time.monotonic() - started, done.returncode


def rss_mib(pid: int) -> float:
    try:
        process = psutil.Process(pid)
        family = [process, *process.children(recursive=True)]
        return float(sum(p.memory_info().rss for p in family)) / 2**20
    except psutil.Error:
        return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path.cwd())
    parser.add_argument("--runs", type=int, default=3, help="stage-2 runs per endpoint mode")
    parser.add_argument(
        "--peers", action="store_true", help="measure against a kubectl script and chainsaw"
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds per figure (--peers)")
    parser.add_argument(
        "--only",
        default=",".join(bench_peers.PARTS),
        help=f"the parts to run with --peers, of {','.join(bench_peers.PARTS)}",
    )
    parser.add_argument("--out", type=Path, help="where --peers writes (default: reports/)")
    parser.add_argument(
        "--pods",
        default="50,500,5000/2000/300",
        help="--peers: scale counts / roll-out pods / red step's replicas",
    )
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if args.peers:
        parts = set(args.only.split(","))
        unknown = parts - set(bench_peers.PARTS)
        if unknown:
            parser.error(f"unknown parts {sorted(unknown)}; choose from {bench_peers.PARTS}")
        counts, rollout, red = args.pods.split("/")
        pods = ([int(c) for c in counts.split(",")], int(rollout), int(red))
        return bench_peers.main(root, args.rounds, parts, args.out or root / "reports", pods)
    settings = load_settings(root)
    with tempfile.TemporaryDirectory(prefix="stagecheck-bench-") as tmp:
        state = Path(tmp) / "sandbox"
        env = {**os.environ, "STAGECHECK_SANDBOX_DIR": str(state)}
        env["STAGECHECK_REPORTS"] = str(Path(tmp) / "reports")
        pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", FEATURES]

        seconds, code = timed(pytest, root, env)
        print(f"no sandbox: pytest {FEATURES} refused in {seconds:.1f} s (exit {code})")

        plane = ControlPlane(root, state)
        try:
            print(f"control plane: warm up in {plane.up():.1f} s")
            plane.down()
            started = time.monotonic()
            count, version = start(root, settings.cache_dir, plane, "stage2", None)
            print(
                f"sandbox: warm up in {time.monotonic() - started:.1f} s "
                f"({count} objects, Llama Stack {version})"
            )
            print("memory (RSS, with children):")
            total = 0.0
            for pid in plane.pids():
                name = "control plane/" + psutil.Process(pid).name()
                total += (mib := rss_mib(pid))
                print(f"  {name:<36} {mib:7.0f} MiB")
            for service in data_plane(root, settings.cache_dir, plane).status().values():
                total += service.rss_mib
                print(f"  {'data plane/' + service.name:<36} {service.rss_mib:7.0f} MiB")
            print(f"  {'total':<36} {total:7.0f} MiB")
            for mode in ("loopback", "port-forward"):
                mode_env = {**env, "STAGECHECK_ENDPOINTS_VIA": mode}
                walls = [timed(pytest, root, mode_env) for _ in range(args.runs)]
                failed = [code for _, code in walls if code != 0]
                figures = ", ".join(f"{s:.1f}" for s, _ in walls)
                print(
                    f"stage 2 via {mode}: pytest wall {figures} s"
                    + (f" (exit codes {failed}: not green)" if failed else " (green)")
                )
        finally:
            stop(root, settings.cache_dir, plane)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
