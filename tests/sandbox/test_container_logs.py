"""The container-logs stand-in writes a data-plane process's output as a container runtime
writes a container's log (CRI format, which kwok reads with the kubelet's reader): whole
lines only, each once, across a fresh log after a restart."""

from __future__ import annotations

import re
from pathlib import Path

from stagecheck.sandbox.standins.container_logs import (
    CRI_FOLDER,
    PROCESS_LOGS,
    ContainerLogsStandin,
)

CRI_LINE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z stdout F (.*)$")


def lines_of(path: Path) -> list[str]:
    found = []
    for line in path.read_text().splitlines():
        match = CRI_LINE.match(line)
        assert match, line
        found.append(match.group(1))
    return found


def test_output_becomes_cri_lines_whole_and_once(tmp_path: Path) -> None:
    source = tmp_path / PROCESS_LOGS / "llm.log"
    source.parent.mkdir(parents=True)
    source.write_bytes(b"INFO: started\r\nINFO: listening on 127.0.0.1:8000\nhalf a li")
    standin = ContainerLogsStandin()
    target = standin._mirror(tmp_path, "llm")
    assert target == tmp_path / CRI_FOLDER / "llm.log"
    assert lines_of(target) == ["INFO: started", "INFO: listening on 127.0.0.1:8000"]
    with source.open("ab") as log:
        log.write(b"ne, now ended\n")
    standin._mirror(tmp_path, "llm")
    standin._mirror(tmp_path, "llm")  # nothing new: nothing written
    assert lines_of(target)[2:] == ["half a line, now ended"]


def test_a_fresh_log_after_a_restart_is_read_from_its_start(tmp_path: Path) -> None:
    source = tmp_path / PROCESS_LOGS / "milvus.log"
    source.parent.mkdir(parents=True)
    source.write_text("first run, line one\nfirst run, line two\n")
    ContainerLogsStandin()._mirror(tmp_path, "milvus")
    source.write_text("second run\n")  # the supervisor started it again with a fresh log
    ContainerLogsStandin()._mirror(tmp_path, "milvus")  # a new stand-ins process, too
    assert lines_of(tmp_path / CRI_FOLDER / "milvus.log") == [
        "first run, line one",
        "first run, line two",
        "second run",
    ]
