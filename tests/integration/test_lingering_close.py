"""Lingering close: an error answer survives the client bytes rota never read.

Closing a socket with unread received bytes makes the kernel send RST, and an RST can destroy
the answer already written (in flight, or in the client's receive buffer before it is read).
rota answers, half-closes, and reads and discards for a bounded time before closing.
"""

from __future__ import annotations

import socket
import time

from tests.conftest import Cluster


def read_all(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def test_oversized_head_sent_at_once_still_reads_its_431(cluster: Cluster) -> None:
    # 200 KB of header fields in one write: rota refuses after ~40 KB (limits.max_header_bytes
    # + max_request_line) with the rest of the write still unread.
    huge = b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-Filler: " + b"a" * 200_000 + b"\r\n\r\n"
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", cluster.port), timeout=5) as s:
            s.sendall(huge)
            data = read_all(s)
        assert data.startswith(b"HTTP/1.1 431 "), data[:60]


def test_lingering_is_bounded_in_time(cluster: Cluster) -> None:
    # A client that keeps sending after the error answer is cut off, not read for ever.
    with socket.create_connection(("127.0.0.1", cluster.port), timeout=5) as s:
        s.sendall(b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n")
        s.settimeout(0.05)
        start = time.monotonic()
        got = b""
        eof_after = cut_after = None
        while time.monotonic() - start < 8:
            try:
                s.sendall(b"x" * 1024)
                chunk = s.recv(65536)
            except TimeoutError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                cut_after = time.monotonic() - start
                break
            if chunk:
                got += chunk
            elif eof_after is None:
                eof_after = time.monotonic() - start  # rota half-closed after its answer
            time.sleep(0.02)
    assert got.startswith(b"HTTP/1.1 400 ")
    assert eof_after is not None and eof_after < 0.5
    assert cut_after is not None and 1.5 < cut_after < 5, cut_after
