"""Binary upgrade: start a new rota from the installed code and hand it every listening
socket (SCM_RIGHTS over a Unix socket pair, `rota.handover`), as HAProxy's master-worker
and nginx's binary upgrade do.

The old process (`start_successor`):
1. makes a socket pair and starts `python -m rota <its own arguments>` with one end
   inherited (its number in $ROTA_UPGRADE_FD);
2. sends every socket it holds (listeners, the control socket, the admin listener);
3. waits for the new process's one line: `ready PID` or `error TEXT`. EOF, an exit, or no
   answer within `READY_TIMEOUT` is a failure too: the old process keeps serving and logs
   why (and `rota upgrade` prints it).
Only after `ready` does the old process drain, so the sockets are never without an
accepting process, and since the sockets themselves are passed, the connections waiting in
their accept queues are accepted by the new process: none is refused.

The new process (`Predecessor`) reads the sockets before it binds anything, takes the ones
its listeners want (the rest are closed once it runs) and writes `ready` once it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Sequence

from rota.handover import Held, Inherited, recv_held, send_held

log = logging.getLogger("rota")

ENV = "ROTA_UPGRADE_FD"
READY_TIMEOUT = 60.0


async def start_successor(argv: Sequence[str], held: list[Held]) -> tuple[int, str | None]:
    """Start the new process and hand it `held`; (its pid, None) once it serves, or
    (pid, the reason) if it did not start (it is killed if still running)."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    env = {**os.environ, ENV: str(theirs.fileno())}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rota", *argv], pass_fds=(theirs.fileno(),), env=env
        )
    except OSError as exc:
        ours.close()
        theirs.close()
        return 0, f"cannot start a new process: {exc}"
    theirs.close()
    try:
        await loop.run_in_executor(None, send_held, ours, held)
        ours.setblocking(False)
        line = await asyncio.wait_for(_read_line(loop, ours), READY_TIMEOUT)
    except TimeoutError:
        line = f"error not ready within {READY_TIMEOUT:g} s"
    except OSError:
        line = ""  # it closed the link, most likely as it exited: its exit code says why
    finally:
        ours.close()
    if line.startswith("ready"):
        return proc.pid, None
    try:
        code = await loop.run_in_executor(None, proc.wait, 5.0)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = await loop.run_in_executor(None, proc.wait)
    reason = line.partition(" ")[2] if line.startswith("error ") else ""
    return proc.pid, reason or f"it exited with code {code} before it was ready"


async def _read_line(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = await loop.sock_recv(sock, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


class Predecessor:
    """The link to the process that started this one for an upgrade, if any."""

    def __init__(self, link: socket.socket | None) -> None:
        self.link = link
        self.inherited = Inherited()

    @classmethod
    def from_env(cls) -> Predecessor:
        """Read the handed-over sockets (blocking: the old process sends them at once)."""
        fd = os.environ.pop(ENV, "")
        if not fd.isdigit():
            return cls(None)
        link = socket.socket(fileno=int(fd))
        link.setblocking(True)
        link.settimeout(READY_TIMEOUT)
        me = cls(link)
        try:
            me.inherited = Inherited(recv_held(link))
        except (OSError, ValueError) as exc:
            log.error("upgrade: no sockets from the old process (%s); binding anew", exc)
        return me

    def ready(self) -> None:
        self._say(f"ready {os.getpid()}")

    def failed(self, reason: str) -> None:
        self._say(f"error {reason}")

    def _say(self, line: str) -> None:
        if self.link is None:
            return
        with contextlib.suppress(OSError):
            self.link.sendall(line.replace("\n", " ").encode() + b"\n")
        self.link.close()
        self.link = None
