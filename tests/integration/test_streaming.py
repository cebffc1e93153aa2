"""Bodies stream both ways with back-pressure: 200 MB each way through a bounded rota."""

from __future__ import annotations

import hashlib
import socket
import time

from tests.conftest import Cluster
from tests.support.http import Client

SIZE = 200 * 1000 * 1000
BLOCK = bytes(range(256)) * 256  # the backend's /bytes pattern, 64 KiB
MAX_GROWTH_KIB = 64 * 1024


def pattern_sha256(size: int) -> str:
    h = hashlib.sha256()
    full, rest = divmod(size, len(BLOCK))
    for _ in range(full):
        h.update(BLOCK)
    h.update(BLOCK[:rest])
    return h.hexdigest()


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, f"closed before the head: {buf!r}"
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head, rest


def test_200mb_upload_checksummed_memory_bounded(cluster: Cluster) -> None:
    before = cluster.lb.rss_kib()
    expected = hashlib.sha256()
    with socket.create_connection(("127.0.0.1", cluster.port), timeout=30) as s:
        s.sendall(b"POST /sha256 HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % SIZE)
        sent = 0
        while sent < SIZE:
            block = BLOCK[: min(len(BLOCK), SIZE - sent)]
            s.sendall(block)
            expected.update(block)
            sent += len(block)
        head, rest = read_head(s)
        while not rest.endswith(b"\n"):
            rest += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 200")
    assert rest.decode().split() == [expected.hexdigest(), str(SIZE)]
    assert cluster.lb.peak_rss_kib() - before < MAX_GROWTH_KIB


def test_200mb_download_slow_reader_checksummed_memory_bounded(cluster: Cluster) -> None:
    before = cluster.lb.rss_kib()
    with socket.create_connection(("127.0.0.1", cluster.port), timeout=30) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: t\r\n\r\n" % SIZE)
        time.sleep(1.0)  # a slow reader: rota must stop reading the backend, not buffer
        head, body = read_head(s)
        assert head.startswith(b"HTTP/1.1 200")
        assert b"Content-Length: %d" % SIZE in head
        h = hashlib.sha256(body)
        got = len(body)
        while got < SIZE:
            chunk = s.recv(1 << 20)
            assert chunk, f"closed after {got} bytes"
            h.update(chunk)
            got += len(chunk)
    assert got == SIZE
    assert h.hexdigest() == pattern_sha256(SIZE)
    assert cluster.lb.peak_rss_kib() - before < MAX_GROWTH_KIB


def test_chunked_and_until_close_responses_are_rechunked(cluster: Cluster) -> None:
    size = 3_000_000
    with Client(cluster.port) as c:
        for path in (f"/bytes/{size}?chunked=1", f"/bytes/{size}?close=1"):
            r = c.request("GET", path)
            assert r.status == 200
            assert r.header("transfer-encoding") == "chunked"
            assert hashlib.sha256(r.body).hexdigest() == pattern_sha256(size)
        # the client connection survives both (rota re-frames for its own hop)
        assert c.request("GET", "/").status == 200


def test_chunked_upload(cluster: Cluster) -> None:
    parts = [b"x" * 1000, b"y" * 70000, b"z"]
    body = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    with Client(cluster.port) as c:
        c.send(b"POST /sha256 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        r = c.read_response()
    joined = b"".join(parts)
    assert r.body.decode().split() == [hashlib.sha256(joined).hexdigest(), str(len(joined))]
