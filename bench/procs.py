"""Starting and stopping the processes of a benchmark, each by PID, each in its own temp dir."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from bench.procstat import pid_alive, tree_pids

LOOPBACK = "127.0.0.1"


class StartError(RuntimeError):
    """A process exited or never answered while it was being started."""


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports that were free on 127.0.0.1 a moment ago.

    All sockets stay bound until every port is picked: the kernel readily hands out a port
    it has just seen released, so picking them one at a time can return the same one twice.
    """
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind((LOOPBACK, 0))
            ports.append(int(s.getsockname()[1]))
        return ports


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (the kernel picks it)."""
    return free_ports(1)[0]


class Proc:
    """One started process (and the children it forks), with its log file in `workdir`."""

    def __init__(
        self, name: str, argv: list[str], workdir: Path, nofile_soft: int | None = None
    ) -> None:
        self.name = name
        self.nofile_soft = nofile_soft
        self.argv = argv
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise StartError(f"{self.name} was not started")
        return self._popen.pid

    def start(self) -> Proc:
        with open(self.log_path, "wb") as log:
            # A new session keeps a terminal's Ctrl-C away from it: we stop it ourselves, in
            # order, from the `finally` of the bench.
            self._popen = subprocess.Popen(
                self.argv,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=self._limits if self.nofile_soft is not None else None,
            )
        return self

    def _limits(self) -> None:
        # In the child, before exec: give it back the user's usual open-files limit, which
        # the bench raised for itself, so a load balancer that needs more must raise its own.
        if self.nofile_soft is not None:
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(self.nofile_soft, hard), hard))

    def exited(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM the process, SIGKILL it after `grace_s`, then any descendant left behind."""
        if self._popen is None or self._popen.poll() is not None:
            return
        family = [p for p in tree_pids(self._popen.pid) if p != self._popen.pid]
        with contextlib.suppress(ProcessLookupError):
            self._popen.send_signal(signal.SIGTERM)
        try:
            self._popen.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait(timeout=grace_s)
        deadline = time.monotonic() + grace_s
        for pid in family:
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> Proc:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def http_get_ok(port: int, timeout_s: float = 1.0) -> bool:
    """True when a plain GET / on 127.0.0.1:port gets a 200 status line."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout_s) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            head = s.recv(64)
    except OSError:
        return False
    return head.startswith(b"HTTP/1.") and head[9:12] == b"200"


def wait_ready(proc: Proc, port: int, timeout_s: float = 15.0) -> None:
    """Wait until `proc` answers 200 on `port`; raise StartError (with its log) otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = proc.exited()
        if code is not None:
            raise StartError(f"{proc.name} exited with {code}:\n{proc.log_tail()}")
        if http_get_ok(port):
            return
        time.sleep(0.05)
    raise StartError(
        f"{proc.name} not ready on port {port} after {timeout_s} s:\n{proc.log_tail()}"
    )
