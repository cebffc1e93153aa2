"""Start the processes TCP-mode tests need and stop them again (by PID, never by name).

Every process binds port 0 and reports its real port on its ready line, so there is no race
for free ports.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_PORT = re.compile(r"listening on (?:\w+://)?\[?[\w.:]+?\]?:(\d+)")


@dataclass
class Proc:
    popen: subprocess.Popen[str]
    port: int
    ready_line: str
    output: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def peak_rss_kib(self) -> int:
        """VmHWM: the most resident memory the process has had so far."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RuntimeError("no VmHWM")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def _drain(popen: subprocess.Popen[str], into: list[str]) -> None:
    assert popen.stdout is not None
    for line in popen.stdout:
        if len(into) < 10_000:
            into.append(line)


@dataclass
class Procs:
    """The processes one test started; `stop_all` ends them."""

    started: list[Proc] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def start(self, *args: str, timeout: float = 10.0) -> Proc:
        env = dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}")
        popen = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + timeout
        assert popen.stdout is not None
        lines: list[str] = []
        while time.monotonic() < deadline:
            line = popen.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = _PORT.search(line)
            if match:
                proc = Proc(popen, int(match.group(1)), line.strip())
                self.started.append(proc)
                # Keep reading its output so a chatty process never blocks on a full pipe.
                threading.Thread(target=_drain, args=(popen, proc.output), daemon=True).start()
                return proc
        popen.kill()
        popen.wait()
        raise RuntimeError(f"{args} never became ready: {''.join(lines)!r}")

    def echo(self, name: str = "echo", *extra: str) -> Proc:
        return self.start("-m", "tests.support.echo_backend", "--name", name, *extra)

    def rota_tcp(self, backends: list[int], *extra: str) -> Proc:
        """`rota lb --mode tcp` over backends on 127.0.0.1 at the given ports, on a free port.
        Health checks only connect (`type: tcp`): the test backends do not speak HTTP."""
        config = {
            "server_list": [
                {"id": i + 1, "host": "127.0.0.1", "port": port} for i, port in enumerate(backends)
            ],
            "health_check": {"type": "tcp", "interval": 0.5, "timeout": 0.5},
        }
        fd, path = tempfile.mkstemp(prefix="rota-tcp-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(config, f)
        self.files.append(path)
        return self.start(
            "-m", "rota", "lb", "--config", path, "--mode", "tcp", "--port", "0", *extra
        )

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            if proc.popen.poll() is None:
                proc.popen.terminate()
        for proc in self.started:
            try:
                proc.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()
        self.started.clear()
        for path in self.files:
            os.unlink(path)
        self.files.clear()


def procs_fixture() -> Iterator[Procs]:
    procs = Procs()
    try:
        yield procs
    finally:
        procs.stop_all()
