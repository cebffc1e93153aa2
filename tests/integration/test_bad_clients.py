"""Clients that misbehave in the middle of a big body (issue 20, bad input): each costs rota
bounded memory while it lasts, and everything (its connection, the backend connection) is
freed at once when it goes. A real `rota lb` and `rota backend`; counts, not times."""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import Proc, start_backend, start_lb, write_config

GIB = 1 << 30
MIB = 1 << 20
STALLED = 50  # clients at once


@pytest.fixture
def lb(tmp_path: Path) -> Iterator[Proc]:
    backend, backend_port = start_backend()
    config = write_config(
        tmp_path / "lb.json", [backend_port], health_check={"type": "tcp", "interval": 30}
    )
    proc, port = start_lb(config)
    proc.port = port  # type: ignore[attr-defined]
    # One connection first: uvloop's libuv keeps one fd (/dev/null) in reserve from the first
    # stream the loop makes, for when accept meets EMFILE. rota accepts through its own
    # loop, so that is the first client's transport, not the listening socket: without
    # this, that fd would count against the fds the tests expect back.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        while s.recv(65536):
            pass
    try:
        yield proc
    finally:
        proc.stop()
        backend.stop()


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def settles_to(pid: int, count: int) -> bool:
    """rota's open fds come back to `count` (bounded: 200 looks, 20 ms apart)."""
    for _ in range(200):
        if fds(pid) <= count:
            return True
        time.sleep(0.02)
    return False


def fill(sock: socket.socket, total: int) -> int:
    """Send up to `total` bytes without blocking for long; returns how many went."""
    sock.settimeout(0.05)
    block = bytes(MIB)
    sent = 0
    try:
        while sent < total:
            sent += sock.send(block[: total - sent])
    except TimeoutError:
        pass
    return sent


def test_clients_that_stop_reading_mid_download_cost_bounded_memory(lb: Proc) -> None:
    port = lb.port  # type: ignore[attr-defined]
    before_fds = fds(lb.pid)
    rss_before = lb.rss_kib()
    clients = []
    for _ in range(STALLED):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: a\r\n\r\n" % GIB)
        assert s.recv(65536).startswith(b"HTTP/1.1 200")  # then never reads again
        clients.append(s)
    for _ in range(50):  # let the buffers fill: the downloads stall
        time.sleep(0.02)
    rss = lb.rss_kib()
    for s in clients:
        reset(s)
    # Two write buffers and a read or two per connection, not the 1 GiB each asked for.
    assert rss - rss_before < STALLED * 2 * 1024, (rss_before, rss)
    assert settles_to(lb.pid, before_fds)  # client and backend connections, all freed


@pytest.mark.parametrize(
    "framing",
    [
        pytest.param(b"Content-Length: %d\r\n\r\n" % GIB, id="content-length"),
        # Passed through in its own framing (docs/http-strictness.md): one 1 GiB chunk.
        pytest.param(b"Transfer-Encoding: chunked\r\n\r\n%x;e=1\r\n" % GIB, id="chunked"),
    ],
)
def test_clients_reset_mid_upload_free_everything_at_once(lb: Proc, framing: bytes) -> None:
    port = lb.port  # type: ignore[attr-defined]
    before_fds = fds(lb.pid)
    rss_before = lb.rss_kib()
    clients = []
    for _ in range(STALLED):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"POST /sha256 HTTP/1.1\r\nHost: a\r\n" + framing)
        clients.append(s)
    sent = [fill(s, 8 * MIB) for s in clients]  # slow uploads: a part, then nothing
    rss = lb.rss_kib()
    for s in clients:
        reset(s)
    assert all(n > 0 for n in sent)
    assert rss - rss_before < STALLED * 2 * 1024, (rss_before, rss)
    assert settles_to(lb.pid, before_fds)
