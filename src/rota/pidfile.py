"""`--pid-file PATH`: the main process's pid, written atomically, removed by its owner.

Across a binary upgrade the new process writes its own pid over the old one's; the old
process then no longer owns the file and leaves it alone at exit (it removes the file only
while the file still names it).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


class PidFileError(Exception):
    """The pid file is missing, unreadable or names no running process."""


def write_pid(path: Path, pid: int | None = None) -> None:
    """Write `pid` (this process's by default) to `path`, replacing it in one rename."""
    pid = os.getpid() if pid is None else pid
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{pid}\n")
    os.replace(tmp, path)


def names_me(path: Path) -> bool:
    """Whether `path` holds this process's pid."""
    try:
        return read_pid(path, check_alive=False) == os.getpid()
    except PidFileError:
        return False


def remove_pid(path: Path) -> None:
    """Remove `path` if it still holds this process's pid."""
    if names_me(path):
        with contextlib.suppress(OSError):
            path.unlink()


def read_pid(path: Path, *, check_alive: bool = True) -> int:
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise PidFileError(f"{path}: cannot read the pid file: {exc.strerror}") from None
    if not text.isdigit() or int(text) <= 0:
        raise PidFileError(f"{path}: expected a process id, found {text[:40]!r}")
    pid = int(text)
    if check_alive:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            raise PidFileError(f"{path}: no process {pid} is running") from None
        except PermissionError:
            pass  # it runs, as another user: the signal itself will say
    return pid
