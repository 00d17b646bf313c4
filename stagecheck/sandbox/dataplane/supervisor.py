"""The supervisor of the data plane's processes: each service is a process group of its own,
recorded in ``processes.json`` (leader pid, its start time, URL, command and variables) so that
another command can find it, stop exactly it, and restart it as it was started.

Every process gets a TMPDIR of its own under <state>/tmp/<service>, and its log is
<state>/logs/<service>.log. Each runs under ``exitcode.py``, which records how it ended in
<state>/exits/<service> (as a container runtime records a container's exit code), so a reader
in another process (the data-plane kubelet) can say how it ended. Process facts come from
Linux /proc.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any, cast

from stagecheck.sandbox.dataplane.probes import listening
from stagecheck.sandbox.dataplane.records import DataPlaneError

STOP_TIMEOUT_S = 5.0
LOG_TAIL_LINES = 30
EXIT_RECORDER = Path(__file__).with_name("exitcode.py")
# Variables of the calling interpreter that would make another environment import wrong code.
FOREIGN_PYTHON_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")

Record = dict[str, Any]


class Supervisor:
    """The process groups recorded in ``<state>/processes.json``."""

    def __init__(self, state_dir: Path) -> None:
        self.state = state_dir
        self.logs = state_dir / "logs"
        self.temp = state_dir / "tmp"
        self.processes_file = state_dir / "processes.json"
        self.exits = state_dir / "exits"
        self._children: dict[int, subprocess.Popen[bytes]] = {}  # ours, to reap

    # -- start ----------------------------------------------------------------------------

    def launch(
        self,
        name: str,
        url: str,
        argv: list[str],
        extra_env: Mapping[str, str],
        leftovers: list[str] | None = None,
        fresh_log: bool = True,
    ) -> None:
        """Start the service in a session of its own (it outlives this process and stops as a
        group) and record it. ``leftovers``: files it leaves outside the state directory
        whatever it is told, removed when it stops."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.exits.mkdir(parents=True, exist_ok=True)
        (self.exits / name).unlink(missing_ok=True)
        temp = self.temp / name
        shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if k not in FOREIGN_PYTHON_VARIABLES}
        env.update(PYTHONUNBUFFERED="1", TMPDIR=str(temp), **extra_env)
        with self.log(name).open("wb" if fresh_log else "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-I", str(EXIT_RECORDER), str(self.exits / name), "--", *argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.state,
                env=env,
                start_new_session=True,
            )
        self._children[process.pid] = process
        records = self.records()
        records[name] = {
            "pid": process.pid,
            "started": _start_ticks(process.pid),
            "url": url,
            "argv": argv,
            "env": dict(extra_env),
            "leftovers": leftovers or [],
        }
        self._write(records)

    def await_ready(self, name: str, answers: Callable[[], bool], timeout: float) -> None:
        """Until the service answers; a service whose processes are gone fails at once."""
        record = self.records()[name]
        deadline = time.monotonic() + timeout
        while True:
            if answers():
                return
            if not self.members(record):
                self._reap()
                code = self._exit_code(record["pid"])
                raise self.not_up(name, f"it exited{'' if code is None else f' (code {code})'}")
            if time.monotonic() > deadline:
                raise self.not_up(name, f"it did not answer within {timeout:.0f}s")
            time.sleep(0.25)

    def not_up(self, name: str, why: str) -> DataPlaneError:
        log = self.log(name)
        tail = tail_lines(log, LOG_TAIL_LINES)
        last = next((line.strip() for line in reversed(tail) if line.strip()), "(empty log)")
        return DataPlaneError(
            f"{name} did not come up: {why}; last log line: {last}; log: {log}\n"
            f"--- last {len(tail)} lines of {log} ---\n" + "\n".join(tail)
        )

    def restart(self, name: str) -> None:
        """Stop what is left of the service's group and start it again as it was recorded:
        the same command, variables and URL (so endpoints.json stays true). Its log goes on."""
        record = self.records()[name]
        self.stop_group(record)
        with self.log(name).open("ab") as log:
            log.write(f"\n--- restarted by the supervisor at {time.ctime()} ---\n".encode())
        self.launch(name, record["url"], record["argv"], record["env"], record["leftovers"], False)

    def relaunch(self, name: str, argv: list[str], extra_env: Mapping[str, str], why: str) -> None:
        """Stop the service's group and start it with another command or variables, on the
        same URL (a container started anew from a changed pod spec). Its log goes on."""
        record = self.records()[name]
        self.stop_group(record)
        with self.log(name).open("ab") as log:
            log.write(f"\n--- started again at {time.ctime()}: {why} ---\n".encode())
        self.launch(name, record["url"], argv, extra_env, record["leftovers"], False)

    def annotate(self, name: str, **fields: str) -> None:
        """Add facts to the service's record (the pod that configured it)."""
        records = self.records()
        records[name].update(fields)
        self._write(records)

    def exit_code(self, name: str) -> int | None:
        """How the service's last process ended (None: it runs, or nothing recorded it)."""
        try:
            return int((self.exits / name).read_text())
        except (OSError, ValueError):
            return None

    # -- stop -----------------------------------------------------------------------------

    def stop_all(self, order: tuple[str, ...]) -> bool:
        """Stop every recorded group in ``order`` (SIGTERM, then SIGKILL after a few seconds)
        and wait until their ports are closed; False when nothing was recorded."""
        records = self.records()
        for name in [*order, *(n for n in records if n not in order)]:
            if name in records:
                self.stop_group(records[name])
        ports = [port_of(record["url"]) for record in records.values()]
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while any(listening(port) for port in ports) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.processes_file.unlink(missing_ok=True)
        shutil.rmtree(self.temp, ignore_errors=True)
        return bool(records)

    def stop_group(self, record: Mapping[str, Any]) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            members = self.members(record)
            for pid in members:
                with suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while members and time.monotonic() < deadline:
                time.sleep(0.1)
                self._reap()
                members = self.members(record)
            if not members:
                break
        for leftover in record.get("leftovers", []):
            Path(leftover).unlink(missing_ok=True)

    # -- state ----------------------------------------------------------------------------

    def records(self) -> dict[str, Record]:
        if not self.processes_file.is_file():
            return {}
        return cast(dict[str, Record], json.loads(self.processes_file.read_text()))

    def members(self, record: Mapping[str, Any]) -> list[int]:
        """Live processes of the recorded group: same process group, started no earlier than
        its leader (so a reused PID is never taken for ours)."""
        self._reap()
        if record["started"] is None:  # gone before it could be recorded: nothing to match
            return []
        return _group_members(int(record["pid"]), int(record["started"]))

    def pids(self) -> list[int]:
        """Every live process of every recorded service (group leaders and their children)."""
        return [pid for record in self.records().values() for pid in self.members(record)]

    def rss_mib(self, record: Mapping[str, Any]) -> float:
        return sum(_rss_kib(pid) for pid in self.members(record)) / 1024

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def _write(self, records: Mapping[str, Record]) -> None:
        self.processes_file.write_text(json.dumps(records, indent=2) + "\n")

    def _reap(self) -> None:
        for process in self._children.values():
            process.poll()

    def _exit_code(self, pid: int) -> int | None:
        process = self._children.get(pid)
        return None if process is None else process.poll()


def port_of(url: str) -> int:
    return int(url.split(":")[2].split("/")[0])


def tail_lines(path: Path, lines: int) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line.rstrip() for line in text.splitlines()[-lines:]]


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name: state is [0], pgrp [2], start [19]."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def _group_members(pgid: int, started_not_before: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if (
            fields
            and fields[0] != "Z"
            and int(fields[2]) == pgid
            and int(fields[19]) >= started_not_before
        ):
            members.append(int(entry.name))
    return members


def _rss_kib(pid: int) -> int:
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
