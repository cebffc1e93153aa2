"""WebSocket (Upgrade) tunnels through a real `rota lb` process to a raw-socket backend.

The tunnel opens only once the backend answers 101 (bytes the client sends right after the
handshake are held until then), relays both ways with back-pressure, passes a half-close on,
and ends the client connection when the backend closes. A backend that refuses the upgrade
(any answer but 101) leaves an ordinary HTTP connection.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.http import Client
from tests.support.procs import start_lb, write_config
from tests.support.ws_backend import BYE, HELLO, WsBackend

HANDSHAKE = (
    "GET {path} HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[tuple[WsBackend, int]]:
    backend = WsBackend()
    config = write_config(
        tmp_path / "db.json",
        [backend.port],
        health_check={"type": "tcp", "interval": 30},
        timeouts={"body": 0.5, "tunnel": 1.5},
    )
    lb, port = start_lb(config)
    yield backend, port
    lb.stop()
    backend.close()


def read_until_eof(c: Client, limit: int) -> bytes:
    while len(c.buf) <= limit and c._fill():
        pass
    return c.buf


def test_handshake_is_forwarded_and_tunnel_carries_bytes_both_ways(
    ws: tuple[WsBackend, int],
) -> None:
    backend, port = ws
    payload = os.urandom(400 * 1024)
    with Client(port) as c:
        c.send(HANDSHAKE.format(path="/echo").encode())
        r = c.read_response()
        assert r.status == 101
        assert r.header("upgrade") == "websocket"
        assert r.header("connection") == "Upgrade"
        assert r.header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

        def send() -> None:
            for i in range(0, len(payload), 16 * 1024):
                c.sock.sendall(payload[i : i + 16 * 1024])
            c.sock.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        got = read_until_eof(c, len(payload) + 100)
        sender.join(10)
    assert len(got) == len(payload) + len(BYE)
    assert hashlib.sha256(got[: len(payload)]).digest() == hashlib.sha256(payload).digest()
    assert got.endswith(BYE)
    (_, head), *_ = backend.heads
    lower = head.lower()
    assert b"\r\nupgrade: websocket" in lower and b"\r\nconnection: upgrade" in lower
    assert b"sec-websocket-key: dghlihnhbxbszsbub25jzq==" in lower


def test_bytes_after_the_handshake_wait_for_the_101(ws: tuple[WsBackend, int]) -> None:
    backend, port = ws
    with Client(port) as c:
        # Sent with the handshake in one write: rota must not pass them on before the 101.
        c.send(HANDSHAKE.format(path="/echo").encode() + b"early bytes")
        r = c.read_response()
        assert r.status == 101
        while len(c.buf) < len(b"early bytes"):
            assert c._fill()
        assert c.buf == b"early bytes"  # delivered after the 101, then echoed
    assert list(backend.early.values()) == [b""]


def test_backend_refusing_the_upgrade_leaves_plain_http(ws: tuple[WsBackend, int]) -> None:
    backend, port = ws
    with Client(port) as c:
        # The next request is pipelined right behind the handshake: held, then parsed as
        # HTTP once the backend answered 200.
        c.send(
            HANDSHAKE.format(path="/refuse").encode() + b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n"
        )
        r = c.read_response()
        assert (r.status, r.body) == (200, b"/refuse")
        assert r.header("upgrade") is None
        r = c.read_response()
        assert (r.status, r.body) == (200, b"/after")
        assert c.request("GET", "/third").body == b"/third"
    assert [h.split(b" ", 2)[1] for _, h in backend.heads] == [b"/refuse", b"/after", b"/third"]


def test_client_half_close_passes_through(ws: tuple[WsBackend, int]) -> None:
    backend, port = ws
    with Client(port) as c:
        c.send(HANDSHAKE.format(path="/echo").encode())
        assert c.read_response().status == 101
        c.send(b"last words")
        c.sock.shutdown(socket.SHUT_WR)
        # The backend still sends after our FIN (echo, then BYE), then closes: all arrives.
        got = read_until_eof(c, 100)
    assert got == b"last words" + BYE
    assert backend.tunnel_ended.wait(2)


def test_backend_closing_ends_the_client_connection(ws: tuple[WsBackend, int]) -> None:
    _, port = ws
    with Client(port) as c:
        c.send(HANDSHAKE.format(path="/close").encode())
        assert c.read_response().status == 101
        assert read_until_eof(c, 100) == HELLO  # then EOF: read_until_eof returned


def test_h2c_upgrade_is_still_stripped(ws: tuple[WsBackend, int]) -> None:
    backend, port = ws
    with Client(port) as c:
        r = c.request("GET", "/echo", headers={"Connection": "Upgrade", "Upgrade": "h2c"})
        assert (r.status, r.body) == (200, b"/echo")
    (_, head), *_ = backend.heads
    assert b"upgrade" not in head.lower()


def test_client_reset_closes_the_backend_connection(ws: tuple[WsBackend, int]) -> None:
    backend, port = ws
    c = Client(port)
    c.send(HANDSHAKE.format(path="/echo").encode())
    assert c.read_response().status == 101
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()  # RST
    assert backend.echo_closed.wait(3)


def test_silent_tunnel_closes_after_the_tunnel_timeout(ws: tuple[WsBackend, int]) -> None:
    backend, port = ws
    with Client(port) as c:
        c.send(HANDSHAKE.format(path="/echo").encode())
        assert c.read_response().status == 101
        c.send(b"ping")
        start = time.monotonic()
        got = read_until_eof(c, 100)
        elapsed = time.monotonic() - start
    assert got == b"ping"
    assert 1.0 < elapsed < 4, elapsed
    assert backend.echo_closed.wait(3)
