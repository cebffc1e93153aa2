"""systemd's readiness protocol, against a datagram socket standing in for systemd:
READY=1 once serving, RELOADING=1/READY=1 around a reload, MAINPID= from the new process
of an upgrade, STOPPING=1 on stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.procs import rota, start_backend, write_config


def command(*args: str) -> int:
    argv = [sys.executable, "-m", "rota", *args]
    return subprocess.run(argv, capture_output=True, timeout=120).returncode


def test_rota_tells_systemd_what_it_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend, backend_port = start_backend(name="a")
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    systemd.bind(str(tmp_path / "notify"))
    systemd.settimeout(30)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    config = write_config(tmp_path / "seed.json", [backend_port], listen={"port": 0})
    pid_file = tmp_path / "rota.pid"
    proc = rota("lb", "--config", str(config), "--pid-file", str(pid_file))
    new_pid = 0
    try:
        assert systemd.recv(4096) == b"READY=1"
        assert command("reload", "--pid-file", str(pid_file)) == 0
        assert systemd.recv(4096) == b"RELOADING=1"
        assert systemd.recv(4096) == b"READY=1"
        assert command("upgrade", "--pid-file", str(pid_file)) == 0
        new_pid = int(pid_file.read_text())
        assert systemd.recv(4096) == b"READY=1\nMAINPID=%d" % new_pid
        assert proc.popen.wait(timeout=30) == 0  # the old one drained: nothing was open
        os.kill(new_pid, signal.SIGTERM)
        assert systemd.recv(4096) == b"STOPPING=1"
        for _ in range(500):
            if not pid_file.exists():
                break
            time.sleep(0.02)
        assert not pid_file.exists()
        new_pid = 0
    finally:
        if new_pid:
            os.kill(new_pid, signal.SIGKILL)
        proc.stop()
        backend.stop()
        systemd.close()
