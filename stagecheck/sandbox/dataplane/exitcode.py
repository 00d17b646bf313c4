"""Runs one data-plane process and records how it ended, as a container runtime records a
container's exit: ``python -m stagecheck.sandbox.dataplane.exitcode FILE -- ARGV...``.

The process is a child of this one, in the same process group (the supervisor's unit of
stopping). When it ends, its exit code is written to FILE as a shell reports it (128 + the
signal for a process killed by a signal: 137 for SIGKILL, 143 for SIGTERM), and this process
exits with the same code. SIGTERM and SIGINT sent to this process are passed on to the child.
So whoever reads the process group later (the data-plane kubelet, in another process) knows
the exit code a kubelet would show in ``lastState.terminated.exitCode``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: exitcode FILE -- ARGV...", file=sys.stderr)
        return 2
    record = Path(argv[0])
    record.unlink(missing_ok=True)
    child = subprocess.Popen(argv[2:])

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = child.wait()
    code = 128 - code if code < 0 else code
    partial = record.with_suffix(".partial")
    partial.write_text(str(code))
    os.replace(partial, record)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
