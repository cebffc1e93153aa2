"""Start real rota processes on free loopback ports and wait for their ready line.

Every process is started by this module and stopped by PID; nothing else is touched.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_python(
    *args: str, pythonpath: str, cwd: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """`python ARGS` in a fresh interpreter, as a user's shell would start it: this
    environment without ROTA_PURE_PYTHON (the suite's pure-Python pass sets it), plus `env`
    and PYTHONPATH; its output captured as text, bounded at 60 s, its exit status left to
    the caller."""
    environment = {k: v for k, v in os.environ.items() if k != "ROTA_PURE_PYTHON"}
    environment.update(env, PYTHONPATH=pythonpath)
    return subprocess.run(
        [sys.executable, *args],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class Proc:
    """A child process whose output is collected in the background."""

    def __init__(self, argv: Sequence[str], cwd: Path | None = None) -> None:
        self.argv = list(argv)
        self.popen = subprocess.Popen(
            self.argv,
            cwd=cwd or REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            with self._cond:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 10.0) -> str:
        """Wait until a line containing `text` is printed; returns that line."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    if text in line:
                        return line
                seen = len(self.lines)
                if self.popen.poll() is not None and not self._reader.is_alive():
                    raise RuntimeError(
                        f"{self.argv} exited with {self.popen.returncode} before {text!r}:\n"
                        + "\n".join(self.lines)
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {text!r} from {self.argv}:\n" + "\n".join(self.lines))
                self._cond.wait(min(left, 0.1))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._reader.join(timeout=2)
        return self.popen.returncode

    def rss_kib(self) -> int:
        """Current resident set size, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def peak_rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0


def rota(*args: str, cwd: Path | None = None) -> Proc:
    return Proc([sys.executable, "-m", "rota", *args], cwd=cwd)


def start_backend(
    port: int | None = None, name: str | None = None, *extra: str
) -> tuple[Proc, int]:
    port = port or free_port()
    argv = ["backend", "--host", "127.0.0.1", "--port", str(port), *extra]
    if name:
        argv += ["--name", name]
    proc = rota(*argv)
    proc.wait_for("listening on")
    return proc, port


def write_config(path: Path, ports: Sequence[int], **sections: object) -> Path:
    data: dict[str, object] = {
        "server_list": [{"id": i + 1, "host": "127.0.0.1", "port": p} for i, p in enumerate(ports)]
    }
    data.update(sections)
    path.write_text(json.dumps(data))
    return path


def start_lb(config: Path, *extra: str, port: int | None = None) -> tuple[Proc, int]:
    port = port or free_port()
    proc = rota("lb", "--config", str(config), "--port", str(port), *extra)
    proc.wait_for("rota listening on")
    return proc, port


@contextmanager
def running(*procs: Proc) -> Iterator[None]:
    try:
        yield
    finally:
        for p in procs:
            p.stop()
