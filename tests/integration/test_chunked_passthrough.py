"""Chunked request bodies pass through a real `rota lb` in the client's own framing.

A raw-socket backend records the bytes it receives: the client's chunks arrive as sent
(size lines, extensions, data, across many reads), the last chunk and trailer section are
rota's (forbidden trailer fields dropped), and a malformed chunk mid-body answers the
client 400 and closes, while the backend never sees it, nor a last chunk.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.http import recv_head
from tests.support.procs import Proc, start_lb, write_config

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"


class RawBackend:
    """Accepts connections and records each one's bytes after the request head, until the
    end of a chunked body (`end`) or until rota closes it; answers 200 at the end."""

    def __init__(self, end: bytes) -> None:
        self.end = end
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = int(self.listener.getsockname()[1])
        self.bodies: list[bytes] = []
        self.finished = threading.Event()  # a connection ended (body end, EOF or reset)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        with sock, contextlib.suppress(OSError):
            sock.settimeout(10)
            got = recv_head(sock, b"")
            if got is None:
                return  # a health probe: connects and closes
            _, body = got
            try:
                while not body.endswith(self.end):
                    chunk = sock.recv(1 << 20)
                    if not chunk:
                        return
                    body += chunk
                sock.sendall(OK)
            finally:
                self.bodies.append(body)
                self.finished.set()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def passthrough(tmp_path: Path) -> Iterator[object]:
    started: list[tuple[Proc, RawBackend]] = []

    def start(end: bytes) -> tuple[RawBackend, int]:
        backend = RawBackend(end)
        config = write_config(
            tmp_path / f"db{len(started)}.json",
            [backend.port],
            health_check={"type": "tcp", "interval": 30},
        )
        lb, port = start_lb(config)
        started.append((lb, backend))
        return backend, port

    yield start
    for lb, backend in started:
        lb.stop()
        backend.close()


HEAD = b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"


def read_all(sock: socket.socket) -> bytes:
    out = b""
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            out += chunk
    return out


def test_chunks_reach_the_backend_byte_for_byte(passthrough: object) -> None:
    big = bytes(range(256)) * 1200  # 300 KiB: a chunk over several reads
    chunks = [
        b"3;name=value\r\nabc\r\n",
        b'00A;q="a b"\r\n0123456789\r\n',
        b"%X\r\n" % len(big) + big + b"\r\n",
        b"1;aws-chunk-signature=" + b"f" * 64 + b"\r\nz\r\n",
    ]
    trailer = b"0;last\r\nX-Sum: 1\r\nHost: evil\r\n\r\n"
    backend, port = passthrough(b"\r\n0\r\nX-Sum: 1\r\n\r\n")  # type: ignore[operator]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(HEAD + chunks[0][:5])
        for piece in (chunks[0][5:], *chunks[1:]):
            time.sleep(0.02)  # separate reads: size lines and data cut where they fall
            s.sendall(piece)
        time.sleep(0.02)
        s.sendall(trailer)
        s.shutdown(socket.SHUT_WR)
        answer = read_all(s)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"ok\n")
    assert backend.finished.wait(5)
    # The client's chunks as sent; the last chunk rota's own, "Host" never forwarded.
    assert backend.bodies == [b"".join(chunks) + b"0\r\nX-Sum: 1\r\n\r\n"]


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(b"3\r\nabcX\r\n", id="data-longer-than-size"),
        pytest.param(b"3 ;x\r\nabc\r\n", id="space-before-extension"),
        pytest.param(b"3;x\nabc\r\n", id="bare-lf"),
        pytest.param(b"-3\r\nabc\r\n", id="negative-size"),
    ],
)
def test_a_malformed_chunk_mid_body_is_400_and_never_forwarded(
    passthrough: object, bad: bytes
) -> None:
    backend, port = passthrough(b"\r\n0\r\n\r\n")  # type: ignore[operator]
    good = b"2;a=b\r\nok\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(HEAD + good)
        time.sleep(0.2)  # the good chunk goes on before the bad one arrives
        s.sendall(bad + b"0\r\n\r\n")
        answer = read_all(s)  # rota answers and closes: EOF
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert backend.finished.wait(5)
    # The backend got the good chunk, then its connection ended: no bad chunk, no end.
    assert backend.bodies == [good]
