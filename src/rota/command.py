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
from typing import Any

from rota.pidfile import PidFileError, read_pid

COMMANDS = {
    "reload": "re-read and apply the configuration file of a running rota",
    "upgrade": "start a new rota from the installed code, hand it the listening sockets, "
    "drain the old one",
}


def command_parsers(sub: Any) -> None:
    """`rota reload` and `rota upgrade` on the CLI's subparsers."""
    for name, what in COMMANDS.items():
        command = sub.add_parser(
            name,
            help=what,
            description=f"{what[0].upper()}{what[1:]}. Prints the result; exit 0 when done, "
            "2 for a bad configuration, 1 otherwise.",
        )
        command.add_argument(
            "--pid-file", required=True, metavar="PATH", help="as given to `rota lb`"
        )


def send_command(command: str, pid_file: Path) -> int:
    from rota.control import ask, control_path  # asyncio and friends: only when asked

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
