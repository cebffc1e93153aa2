"""`rota reload` and `rota upgrade`: ask the rota named by a pid file and print its answer.

The answer comes over the control socket beside the pid file (`rota.control`): the running
process reads and validates its own configuration file (the one it was started with, with
the same flags), so the result is exactly what it applied or refused. A process without a
control socket (none is bound when `--pid-file` is not given, so there is no pid file
either) cannot be asked. Exit codes: 0 done, 2 a bad configuration, 1 anything else.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rota.control import ask, control_path
from rota.pidfile import PidFileError, read_pid


def send_command(command: str, pid_file: Path) -> int:
    try:
        pid = read_pid(pid_file)
    except PidFileError as exc:
        print(f"rota {command}: {exc}", file=sys.stderr)
        return 1
    path = control_path(pid_file)
    try:
        code, message = ask(path, command)
    except OSError as exc:
        print(
            f"rota {command}: cannot reach rota (pid {pid}) at {path}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    print(f"rota {command}: {message}", file=sys.stderr if code else sys.stdout)
    return code
