"""A pod's container filesystem for a process of this machine, under bubblewrap: this machine's
files, with host folders bound at the paths the container sees (the image's home folder, each
of the pod's volumes), read-only where Kubernetes mounts them read-only. The process runs as
root here, so file modes would not stop it; a read-only bind does (``EROFS``).

A mount point that does not exist on this machine (``/.llama``, ``/opt/app-root/src``) is
made in the process's own view only: the folder that would hold it is replaced by an empty
one (tmpfs) holding binds of this machine's entries, so nothing is created outside the
process's folders. One under another bind is made in that bind's host folder first (which may
be read-only in the view, as Kubernetes makes it in the volume's own folder).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from stagecheck.sandbox.dataplane.records import DataPlaneError


@dataclass(frozen=True)
class Bind:
    """A host folder (or file) the process sees at ``path``."""

    path: str
    source: Path
    read_only: bool = False


def confined(argv: Sequence[str], binds: Sequence[Bind], workdir: str) -> list[str]:
    """``argv`` run in the view ``binds`` make, from ``workdir``; it ends with its parent (the
    exit-code wrapper), and its exit code is bubblewrap's."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise DataPlaneError("the data plane needs bubblewrap (apt-get install bubblewrap)")
    view: list[str] = []
    opened: list[str] = []
    bound: list[tuple[str, Bind]] = []
    # A path through a link of this machine's (/var/run -> /run) is bound where it leads
    targets = [(os.path.realpath(b.path), b) for b in binds]
    for path, bind in sorted(targets, key=lambda t: len(PurePosixPath(t[0]).parts)):
        outer = next(
            ((at, b) for at, b in reversed(bound) if path != at and _under(path, at)), None
        )
        if outer is not None:  # the mount point, in the folder of ours that holds it
            _mount_point(outer[1].source / os.path.relpath(path, outer[0]), bind)
        elif not os.path.lexists(path):
            holder = _existing_parent(path)
            if holder not in opened:
                opened.append(holder)
                if holder != "/":
                    view += ["--tmpfs", holder, *_entries(holder)]
        view += ["--ro-bind" if bind.read_only else "--bind", str(bind.source), path]
        bound.append((path, bind))
    root = _entries("/") if "/" in opened else ["--dev-bind", "/", "/"]
    return [bwrap, *root, *view, "--die-with-parent", "--chdir", workdir, "--", *argv]


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _mount_point(at: Path, bind: Bind) -> None:
    if bind.source.is_dir():
        at.mkdir(parents=True, exist_ok=True)
    else:
        at.parent.mkdir(parents=True, exist_ok=True)
        at.touch()


def _existing_parent(path: str) -> str:
    parent = PurePosixPath(path).parent
    while not os.path.lexists(parent):
        parent = parent.parent
    return str(parent)


def _entries(folder: str) -> list[str]:
    """This machine's entries of ``folder``, bound where they are (links made again)."""
    args: list[str] = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_symlink():
            args += ["--symlink", os.readlink(entry.path), entry.path]
        else:
            args += ["--dev-bind", entry.path, entry.path]
    return args
