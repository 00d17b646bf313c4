"""The stand-ins' process as the sandbox CLI sees it: start it once, judge it, wait for the
world to settle, stop it and leave nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from stagecheck.errors import StagecheckError
from stagecheck.sandbox.controlplane import alive
from stagecheck.sandbox.health import Health
from stagecheck.sandbox.standins.runner import HEARTBEAT, PASS_INTERVAL_S

STALE_AFTER_S = 10.0  # a heartbeat older than this: the process hangs
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
LOG_TAIL_LINES = 20


class StandinsError(StagecheckError):
    """The stand-in controllers did not start, died, or the world did not settle."""


class StandIns:
    """The process ``python -m stagecheck.sandbox.standins`` for one sandbox state folder."""

    name = "stand-in controllers"

    def __init__(self, state_dir: Path, root: Path) -> None:
        self.state, self.root = state_dir, root
        self.pid_file = state_dir / "standins" / "pid"
        self.heartbeat = state_dir / HEARTBEAT
        self.log = state_dir / "logs" / "standins.log"

    def start(self) -> None:
        """Start it unless it runs; returns once its first pass is done."""
        if self.pid() is not None:
            return
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.heartbeat.unlink(missing_ok=True)
        env = {**os.environ, "PYTHONPATH": str(self.root), "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "stagecheck.sandbox.standins", "--state", str(self.state)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.root,
                start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + START_TIMEOUT_S
        while self._record() is None:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise StandinsError(
                    f"the stand-in controllers exited at start (code {process.returncode}); "
                    f"log {self.log}:\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise StandinsError(
                    f"the stand-in controllers made no pass within {START_TIMEOUT_S:.0f}s; "
                    f"log {self.log}:\n{self.tail()}"
                )
            time.sleep(0.05)

    def await_settled(self, timeout_s: float = 60.0) -> int:
        """Wait for a full pass begun after now that wrote nothing; returns its number."""
        first = self._pass_number() + 2  # the pass under way may have read the old world
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            record = self._record()
            if record is None or self.pid() is None:
                raise StandinsError(f"the stand-in controllers died; log:\n{self.tail()}")
            if record["pass"] >= first and record["writes"] == 0:
                return int(record["pass"])
            time.sleep(PASS_INTERVAL_S / 4)
        record = self._record() or {}
        failing = {k: v for k, v in (record.get("controllers") or {}).items() if v}
        raise StandinsError(
            f"the sandbox world did not settle within {timeout_s:.0f}s: the stand-in "
            f"controllers still write at every pass (pass {record.get('pass')}, "
            f"{record.get('writes')} writes)" + (f"; failing: {failing}" if failing else "")
        )

    def check(self) -> Health:
        """Its health for ``scripts/sandbox status``: alive, passing, no controller failing."""
        found = self.health()
        return Health(found.healthy, found.detail, None if found.healthy else self.log)

    def health(self) -> Health:
        pid = self.pid()
        if pid is None:
            return Health(False, "not running" + self._last_words())
        record = self._record()
        if record is None:
            return Health(False, f"pid {pid} has made no pass yet")
        age = time.time() - float(record["at"])
        if age > STALE_AFTER_S:
            return Health(False, f"pid {pid}: no pass for {age:.0f}s (hung)")
        failing = {k: v for k, v in (record.get("controllers") or {}).items() if v}
        if failing:
            errors = "; ".join(f"{k}: {v}" for k, v in failing.items())
            return Health(False, f"pid {pid}: {errors}")
        names = ", ".join(sorted(record.get("controllers") or {}))
        return Health(True, f"pid {pid}, pass {record['pass']} {age:.1f}s ago ({names})")

    def stop(self) -> bool:
        pid = self.pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(pid):
            os.killpg(pid, signal.SIGKILL)
        return True

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return pid if alive(pid) else None

    def tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])
        except FileNotFoundError:
            return "(no log)"

    def _last_words(self) -> str:
        return f"; last log lines:\n{self.tail()}" if self.log.exists() else ""

    def _record(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.heartbeat.read_text()))
        except (FileNotFoundError, ValueError):
            return None

    def _pass_number(self) -> int:
        return int((self._record() or {}).get("pass") or 0)
