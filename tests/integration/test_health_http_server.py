"""Health checks against the backends a Coding Challenges user starts first:
`python -m http.server`, which answers 404 on `/health` (issue 19). The log names the
probe and, once, the setting to change; with that setting the same servers serve."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.http import get
from tests.support.procs import Proc, free_port, start_lb, write_config

FAST = ("--health-check-interval", "0.2", "--health-check-timeout", "0.2", "--fall", "1")


def wait_listening(proc: Proc, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"http.server exited:\n{proc.output()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"http.server not listening on {port}")


@pytest.fixture
def http_servers(tmp_path: Path) -> Iterator[list[int]]:
    (tmp_path / "index.html").write_text("hello from http.server\n")
    ports = [free_port(), free_port()]
    procs = [
        Proc(
            [sys.executable, "-m", "http.server", str(p), "--bind", "127.0.0.1"],
            cwd=tmp_path,
        )
        for p in ports
    ]
    try:
        for proc, port in zip(procs, ports, strict=True):
            wait_listening(proc, port)
        yield ports
    finally:
        for proc in procs:
            proc.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_every_server_404_on_health_names_the_probe_and_the_setting_once(
    tmp_path: Path, http_servers: list[int], workers: int
) -> None:
    config = write_config(tmp_path / "server_db.json", http_servers)
    lb, port = start_lb(config, *FAST, "--workers", str(workers))
    try:
        hint = lb.wait_for("every server answers its health check")
        # With --workers the supervisor's verdict reaches each worker over its pipe a
        # moment after the line: ask a few times.
        statuses = []
        for _ in range(50):
            statuses.append(get(port).status)
            if statuses[-1] == 503:
                break
            time.sleep(0.1)
        out = lb.output()
    finally:
        lb.stop()
    assert statuses[-1] == 503, statuses
    for backend in http_servers:
        # One line per server: with --workers the supervisor logs, not each worker.
        lines = [line for line in out.splitlines() if f"backend 127.0.0.1:{backend} DOWN" in line]
        assert len(lines) == 1, out
        assert "(GET /health -> 404; " in lines[0]
    assert out.count("no backend available") == 1
    assert out.count("every server answers its health check") == 1
    assert "with GET /health -> 404: if /health is not their health endpoint" in hint
    assert "set health_check.path (--health-check-path)" in hint
    assert 'health_check.type = "tcp" (--health-check-type tcp)' in hint


@pytest.mark.parametrize("setting", [("--health-check-path", "/"), ("--health-check-type", "tcp")])
def test_the_setting_the_line_names_keeps_them_up(
    tmp_path: Path, http_servers: list[int], setting: tuple[str, str]
) -> None:
    config = write_config(tmp_path / "server_db.json", http_servers)
    lb, port = start_lb(config, *FAST, *setting)
    try:
        time.sleep(1.0)  # five probes of each server
        answers = [get(port) for _ in range(4)]
        out = lb.output()
    finally:
        lb.stop()
    assert [r.status for r in answers] == [200] * 4
    assert all(r.body == b"hello from http.server\n" for r in answers)
    assert " DOWN (" not in out, out
