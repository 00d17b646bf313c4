"""python -m stagecheck.sandbox.dataplane prepare|up|down|status|heal [--fault NAME]"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from stagecheck.sandbox.dataplane import FAULTS, PROJECT_ROOT, DataPlane, DataPlaneError


def main(argv: list[str] | None = None) -> int:
    from stagecheck.config import load_settings

    parser = argparse.ArgumentParser(prog="dataplane", description="the sandbox's data plane")
    parser.add_argument("command", choices=["prepare", "up", "down", "status", "heal"])
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT, help="the project checkout")
    parser.add_argument("--fault", action="append", default=[], choices=sorted(FAULTS))
    args = parser.parse_args(argv)
    settings = load_settings(root=args.root.resolve(), target_option="sandbox")
    plane = DataPlane(settings.cache_dir, settings.sandbox_dir / "dataplane", args.root.resolve())
    try:
        if args.command == "prepare":
            for env in plane.prepare().values():
                print(f"{env.name}: {env.path}")
        elif args.command == "up":
            started = time.monotonic()
            endpoints = plane.start(args.fault)
            print(json.dumps(endpoints, indent=2))
            print(f"data plane up in {time.monotonic() - started:.1f}s; {plane.endpoints_file}")
        elif args.command == "heal":
            restarted = plane.heal()
            print(f"restarted: {', '.join(restarted)}" if restarted else "nothing to restart")
        elif args.command == "down":
            print("data plane stopped" if plane.stop() else "data plane was not running")
        else:
            found = plane.status()
            if not found:
                print("data plane is not running")
                return 1
            for s in found.values():
                state = "healthy" if s.healthy else "running" if s.running else "stopped"
                print(f"{s.name:<11} {state:<8} {s.url:<28} {s.rss_mib:7.0f} MiB  {s.log}")
            recorded = plane.endpoints()
            kept_down = recorded["down"] if recorded else {}
            if not all(s.healthy or s.name in kept_down for s in found.values()):
                return 1  # a fault variant's intended casualties do not count
    except (DataPlaneError, subprocess.CalledProcessError) as error:
        print(f"dataplane {args.command}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
