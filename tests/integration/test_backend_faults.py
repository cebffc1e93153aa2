"""Backends that misbehave, scripted byte by byte, behind a real `rota lb` process.

A response with invalid framing is a 502 and its connection is dropped; a backend that closes
before answering is a 502 (a reused pooled connection is retried once when that is safe); a
backend that dies mid-response leaves the client a truncated response, never a fake complete
one; a connection with bytes after a response, or answered before the request body ended, is
never reused; a client that goes away makes rota close the backend connection at once.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.http import Client
from tests.support.procs import Proc, start_lb, write_config
from tests.support.scripted_backend import OK, Script, ScriptedBackend, read_body


@pytest.fixture
def behind_rota(tmp_path: Path) -> Iterator[object]:
    started: list[tuple[Proc, ScriptedBackend]] = []

    def start(script: Script) -> tuple[ScriptedBackend, int]:
        backend = ScriptedBackend(script)
        # TCP health checks: probes connect and close, never send a request.
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


def marked(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: a\r\n\r\n".encode()


BAD_FRAMING = {
    "cl-and-te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    "two-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "bad-length": b"HTTP/1.1 200 OK\r\nContent-Length: 1 0\r\n\r\n0123456789",
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n",
    "bare-lf": b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    "bad-status": b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    "not-http": b"SSH-2.0-OpenSSH_9.6\r\n",
}


@pytest.mark.parametrize("response", BAD_FRAMING.values(), ids=list(BAD_FRAMING))
def test_invalid_response_framing_is_502_and_the_connection_is_dropped(
    behind_rota: object, response: bytes
) -> None:
    def script(conn: int, n: int, head: bytes, sock: socket.socket) -> bool:
        sock.sendall(response if b"/bad" in head else OK)
        return True

    backend, port = behind_rota(script)  # type: ignore[operator]
    with Client(port) as c:
        r = c.request("GET", "/bad")
        assert r.status == 502
    with Client(port) as c:
        assert c.request("GET", "/good").status == 200
    bad, good = backend.conns_of(b"/bad"), backend.conns_of(b"/good")
    assert len(bad) == 1 and len(good) == 1
    assert good[0] != bad[0], "the connection with the broken response was reused"
    assert backend.closed[bad[0]].wait(2)


def test_backend_closing_before_the_head_is_502(behind_rota: object) -> None:
    def script(conn: int, n: int, head: bytes, sock: socket.socket) -> bool:
        return False  # read the request, close without a byte

    backend, port = behind_rota(script)  # type: ignore[operator]
    with Client(port) as c:
        assert c.request("GET", "/").status == 502
    # A fresh connection that failed is not retried on the same backend (the only one):
    # the backend saw the request once.
    assert len(backend.requests) == 1


def test_reused_connection_closed_by_the_backend_is_retried_once(behind_rota: object) -> None:
    def script(conn: int, n: int, head: bytes, sock: socket.socket) -> bool:
        if n == 1:
            return False  # the second request on a kept-alive connection: close, no answer
        sock.sendall(OK)
        return True

    backend, port = behind_rota(script)  # type: ignore[operator]
    with Client(port) as c:
        assert c.request("GET", "/one").status == 200
        assert c.request("GET", "/two").status == 200  # retried on a fresh connection
        # Not idempotent: once its bytes went out it is never sent again.
        r = c.request("POST", "/three", body=b"abc")
        assert r.status == 502
    (first,) = backend.conns_of(b"/one")
    kept, fresh = backend.conns_of(b"/two")
    assert kept == first and fresh != first
    assert len(backend.conns_of(b"/three")) == 1


@pytest.mark.parametrize(
    "partial",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    ],
    ids=["content-length", "chunked"],
)
def test_backend_dying_mid_response_truncates_it(behind_rota: object, partial: bytes) -> None:
    def script(conn: int, n: int, head: bytes, sock: socket.socket) -> bool:
        sock.sendall(partial)
        time.sleep(0.1)
        return False

    _, port = behind_rota(script)  # type: ignore[operator]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(marked("/x"))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    if b"content-length: 100" in head.lower():
        assert len(body) < 100
    else:
        assert not body.endswith(b"0\r\n\r\n"), "a fake end of a chunked body"


def test_bytes_after_a_response_stop_reuse(behind_rota: object) -> None:
    def script(conn: int, n: int, head: bytes, sock: socket.socket) -> bool:
        sock.sendall(OK + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" if n == 0 else OK)
        return True

    backend, port = behind_rota(script)  # type: ignore[operator]
    with Client(port) as c:
        assert c.request("GET", "/one").body == b"ok\n"
        time.sleep(0.1)
        # /two's own answer, not the stray response the backend sent after /one's.
        assert c.request("GET", "/two").body == b"ok\n"
    assert backend.conns_of(b"/one") != backend.conns_of(b"/two")


def test_response_before_the_request_body_ended_stops_reuse(behind_rota: object) -> None:
    def script(conn: int, n: int, head: bytes, sock: socket.socket) -> bool:
        sock.sendall(OK)  # answered at once, the body not read
        return True

    backend, port = behind_rota(script)  # type: ignore[operator]
    with Client(port) as c:
        c.send(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        r = c.read_response()
        assert r.status == 200
        # The client's connection cannot be trusted to be in sync any more either.
        assert r.header("connection") == "close"
    with Client(port) as c:
        assert c.request("GET", "/next").status == 200
    (upload,) = backend.conns_of(b"/upload")
    assert backend.conns_of(b"/next") != [upload]


def test_client_leaving_mid_response_closes_the_backend_connection(behind_rota: object) -> None:
    def script(conn: int, n: int, head: bytes, sock: socket.socket) -> bool:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n" + b"x" * 1000)
        # Trickle; rota must close this connection once the client is gone.
        for _ in range(100):
            time.sleep(0.05)
            sock.sendall(b"x" * 1000)
        return False

    backend, port = behind_rota(script)  # type: ignore[operator]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(marked("/big"))
        assert s.recv(4096).startswith(b"HTTP/1.1 200 ")
    started = time.monotonic()
    (conn,) = backend.conns_of(b"/big")
    assert backend.closed[conn].wait(3)
    assert time.monotonic() - started < 2


def test_client_leaving_mid_request_closes_the_backend_connection(behind_rota: object) -> None:
    def script(conn: int, n: int, head: bytes, sock: socket.socket) -> bool:
        while sock.recv(65536):  # read the body as it comes; EOF when rota closes
            pass
        return False

    backend, port = behind_rota(script)  # type: ignore[operator]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10)
        deadline = time.monotonic() + 3
        while not backend.conns_of(b"/up") and time.monotonic() < deadline:
            time.sleep(0.02)
    started = time.monotonic()
    (conn,) = backend.conns_of(b"/up")
    assert backend.closed[conn].wait(3)
    assert time.monotonic() - started < 2


def test_expect_100_continue_is_passed_through(behind_rota: object) -> None:
    def script(conn: int, n: int, head: bytes, sock: socket.socket) -> bool:
        if b"100-continue" in head.lower():
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = read_body(sock, head)
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        else:
            sock.sendall(OK)
        return True

    _, port = behind_rota(script)  # type: ignore[operator]
    with Client(port) as c:
        c.send(b"POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        interim = c.read_response()
        assert interim.status == 100  # the body is sent only after this
        c.send(b"hello")
        final = c.read_response()
        assert (final.status, final.body) == (200, b"hello")
        assert c.request("GET", "/").status == 200  # still in sync, still kept alive


def test_final_answer_to_expect_without_the_body_closes(behind_rota: object) -> None:
    def script(conn: int, n: int, head: bytes, sock: socket.socket) -> bool:
        sock.sendall(b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n")
        return True

    _, port = behind_rota(script)  # type: ignore[operator]
    with Client(port) as c:
        c.send(b"POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        r = c.read_response()
        assert r.status == 417
        # The body was never sent: the connection cannot carry another request in sync.
        assert r.header("connection") == "close"
        assert c.closed_by_peer()


def _dechunk(raw: bytes) -> bytes:
    out = b""
    while True:
        line, raw = raw.split(b"\r\n", 1)
        size = int(line, 16)
        if size == 0:
            return out
        out, raw = out + raw[:size], raw[size + 2 :]


def test_transfer_coding_not_ending_in_chunked_is_read_until_close(behind_rota: object) -> None:
    # RFC 9112 6.3 rule 4: no final chunked, so the body ends when the backend closes; the
    # coding is the body's and stays labelled for the client, re-chunked on its hop.
    payload = b"not really gzip but opaque bytes\r\n0\r\n\r\n" * 50

    def script(conn: int, n: int, head: bytes, sock: socket.socket) -> bool:
        if b"/te" not in head:
            sock.sendall(OK)
            return True
        sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n")
        time.sleep(0.05)
        sock.sendall(payload)
        return False  # close: that is the end of the body

    backend, port = behind_rota(script)  # type: ignore[operator]
    with Client(port) as c:
        c.send(b"GET /te HTTP/1.1\r\nHost: a\r\n\r\n")
        while b"\r\n0\r\n\r\n" not in c.buf or not c.buf.endswith(b"\r\n0\r\n\r\n"):
            assert c._fill(), c.buf[:200]
        head, body = c.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert b"\r\nTransfer-Encoding: gzip, chunked" in head
        assert _dechunk(body) == payload
        c.buf = b""
        # The client connection is still good; the backend's was not reused.
        assert c.request("GET", "/again").status == 200
    assert len(backend.requests) == 2 and backend.requests[0][0] != backend.requests[1][0]


def test_other_codings_before_chunked_stay_labelled(behind_rota: object) -> None:
    def script(conn: int, n: int, head: bytes, sock: socket.socket) -> bool:
        sock.sendall(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        return True

    _, port = behind_rota(script)  # type: ignore[operator]
    with Client(port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        while c._fill():
            pass
    head, body = c.buf.split(b"\r\n\r\n", 1)
    assert b"\r\nTransfer-Encoding: gzip, chunked" in head
    assert _dechunk(body) == b"hello"
