"""The control socket: how `rota reload` and `rota upgrade` reach a running rota and hear
the result.

A signal carries no answer, so `rota lb --pid-file PATH` also listens on an AF_UNIX socket
next to the pid file (`PATH.ctl`, mode 0600: only its user may use it). A client sends one
command line (`reload` or `upgrade`) and reads one JSON line back: {"code": int,
"message": str}, the exit code for `rota reload`/`rota upgrade` (0 done, 2 a bad
configuration file, 1 anything else) and what to print. The same coroutines run for
SIGHUP and SIGUSR2, whose results only go to the log. Across a binary upgrade the socket
itself is handed to the new process with the listening sockets, so the path never
disappears.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from rota.handover import Held

log = logging.getLogger("rota")

# A command's answer: (exit code, message).
Answer = tuple[int, str]
Command = Callable[[], Awaitable[Answer]]
ANSWER_TIMEOUT = 120.0  # an upgrade waits for the new process to start


def control_path(pid_file: Path) -> Path:
    return pid_file.with_name(pid_file.name + ".ctl")


class ControlServer:
    def __init__(self, commands: Mapping[str, Command]) -> None:
        self.commands = commands
        self.sock: socket.socket | None = None
        self.server: asyncio.AbstractServer | None = None
        self.path: Path | None = None
        self._serving: set[asyncio.Task[object] | None] = set()

    async def start(self, path: Path, inherited: socket.socket | None = None) -> None:
        self.path = path
        if inherited is not None:
            sock = inherited
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(str(path))
            os.chmod(path, 0o600)
            sock.listen(16)
        sock.setblocking(False)
        self.sock = sock
        self.server = await asyncio.start_unix_server(self._serve, sock=sock)

    def held(self) -> list[Held]:
        if self.sock is None or self.path is None:
            return []
        return [Held("control", str(self.path), 0, 0, (self.sock,))]

    async def aclose(self, *, unlink: bool) -> None:
        """Stop listening; let a command being answered finish (at most a second)."""
        if self.server is not None:
            self.server.close()
            self.server = None
        for _ in range(20):
            if not self._serving:
                break
            await asyncio.sleep(0.05)
        if unlink and self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._serving.add(task)
        try:
            line = await asyncio.wait_for(reader.readline(), 5.0)
            name = line.decode(errors="replace").strip()
            command = self.commands.get(name)
            code, message = (1, f"unknown command {name!r}") if command is None else await command()
            writer.write(json.dumps({"code": code, "message": message}).encode() + b"\n")
            await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            log.debug("control connection: %s", exc)
        finally:
            writer.close()
            self._serving.discard(task)


def ask(path: Path, command: str, timeout: float = ANSWER_TIMEOUT) -> Answer:
    """Send `command` to the control socket at `path`; (exit code, message). Raises
    OSError when nothing listens there."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(command.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data:
        return 1, "the running rota closed the control connection without an answer"
    answer = json.loads(data)
    return int(answer.get("code", 1)), str(answer.get("message", ""))
