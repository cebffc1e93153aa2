"""The socket probe against tiny stdlib servers on 127.0.0.1 (real sockets, no mocks)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from rota import __version__
from rota.config.model import CheckKind, HealthSpec
from rota.health.probe import Probe, ProbeResult

Handler = Callable[[socket.socket], None]


class TinyServer:
    """Accepts connections on 127.0.0.1 and hands each to `handler` in a thread."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            self.handler(conn)

    def close(self) -> None:
        self.stopping.set()
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], TinyServer]]:
    servers: list[TinyServer] = []

    def start(handler: Handler) -> TinyServer:
        server = TinyServer(handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def read_head(conn: socket.socket) -> bytes:
    conn.settimeout(2.0)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def answer(status: str, record: list[bytes] | None = None) -> Handler:
    def handler(conn: socket.socket) -> None:
        head = read_head(conn)
        if record is not None:
            record.append(head)
        reply = f"HTTP/1.1 {status}\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
        conn.sendall(reply.encode())

    return handler


def hang(conn: socket.socket) -> None:
    read_head(conn)
    time.sleep(3.0)


SPEC = HealthSpec(interval=0.5, timeout=0.3)


def run(port: int, spec: HealthSpec = SPEC) -> tuple[ProbeResult, float]:
    t0 = time.monotonic()
    result = Probe("127.0.0.1", port, spec)()
    return result, time.monotonic() - t0


def test_200_passes_and_the_request_is_what_the_issue_says(
    serve: Callable[..., TinyServer],
) -> None:
    heads: list[bytes] = []
    server = serve(answer("200 OK", heads))
    result, _ = run(server.port, HealthSpec(path="/healthz", timeout=1.0))
    assert result == ProbeResult(True, "GET /healthz -> 200")
    lines = heads[0].decode().split("\r\n")
    assert lines[0] == "GET /healthz HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}" in lines
    assert "Connection: close" in lines
    assert f"User-Agent: rota-health/{__version__}" in lines


def test_status_outside_the_range_fails(serve: Callable[..., TinyServer]) -> None:
    server = serve(answer("500 Internal Server Error"))
    assert run(server.port)[0] == ProbeResult(False, "GET /health -> 500")


def test_status_range_is_configurable(serve: Callable[..., TinyServer]) -> None:
    server = serve(answer("404 Not Found"))
    assert run(server.port)[0] == ProbeResult(False, "GET /health -> 404")
    only_404 = HealthSpec(interval=0.5, timeout=0.3, status_min=404, status_max=404)
    assert run(server.port, only_404)[0] == ProbeResult(True, "GET /health -> 404")


def test_redirect_passes_by_default(serve: Callable[..., TinyServer]) -> None:
    server = serve(answer("302 Found"))
    assert run(server.port)[0].ok


def test_refused() -> None:
    # Bound but not listening: the kernel refuses connections to it.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        result, took = run(port)
    assert result == ProbeResult(False, "connection refused")
    assert took < 0.1


def test_a_hanging_backend_fails_after_the_timeout_and_no_later(
    serve: Callable[..., TinyServer],
) -> None:
    server = serve(hang)
    result, took = run(server.port)
    assert result == ProbeResult(False, "timeout")
    assert 0.28 <= took < 0.45


def test_one_deadline_covers_a_trickling_response(serve: Callable[..., TinyServer]) -> None:
    # Each byte arrives well within the timeout, but the status line as a whole does not:
    # per-call socket timeouts alone would never fire.
    def trickle(conn: socket.socket) -> None:
        read_head(conn)
        for byte in b"HTTP/1.1 200 OK\r\n":
            conn.sendall(bytes([byte]))
            time.sleep(0.05)

    server = serve(trickle)
    result, took = run(server.port)
    assert result == ProbeResult(False, "timeout")
    assert took < 0.45


def test_closed_without_answer_fails(serve: Callable[..., TinyServer]) -> None:
    server = serve(read_head)  # reads the request, then closes
    assert run(server.port)[0] == ProbeResult(False, "connection closed before a status line")


def test_reset_fails(serve: Callable[..., TinyServer]) -> None:
    def reset(conn: socket.socket) -> None:
        read_head(conn)
        # SO_LINGER with a zero timeout: close() sends a RST instead of a FIN.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    server = serve(reset)
    assert run(server.port)[0] == ProbeResult(False, "connection reset")


def test_not_http_fails(serve: Callable[..., TinyServer]) -> None:
    def garbage(conn: socket.socket) -> None:
        read_head(conn)
        conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")

    server = serve(garbage)
    assert run(server.port)[0] == ProbeResult(False, "bad status line")


def test_endless_line_fails(serve: Callable[..., TinyServer]) -> None:
    def endless(conn: socket.socket) -> None:
        read_head(conn)
        conn.sendall(b"HTTP/1.1 200 " + b"x" * 5000)

    server = serve(endless)
    assert run(server.port)[0] == ProbeResult(False, "bad status line")


def test_tcp_kind_passes_on_connect_and_fails_on_refused(serve: Callable[..., TinyServer]) -> None:
    server = serve(hang)  # would fail an HTTP check; a TCP check only connects
    tcp = HealthSpec(interval=0.5, timeout=0.3, kind=CheckKind.TCP)
    result, took = run(server.port, tcp)
    assert result == ProbeResult(True, "connected")
    assert took < 0.1
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        assert run(sock.getsockname()[1], tcp)[0] == ProbeResult(False, "connection refused")


def test_abort_cuts_a_hanging_probe_short(serve: Callable[..., TinyServer]) -> None:
    server = serve(hang)
    probe = Probe("127.0.0.1", server.port, HealthSpec(interval=10.0, timeout=5.0))
    results: list[ProbeResult] = []
    thread = threading.Thread(target=lambda: results.append(probe()))
    thread.start()
    time.sleep(0.2)  # connected and waiting for the status line
    t0 = time.monotonic()
    probe.abort()
    thread.join(2.0)
    assert not thread.is_alive()
    assert time.monotonic() - t0 < 0.2
    assert results == [ProbeResult(False, "aborted")]
    assert probe() == ProbeResult(False, "aborted")  # and stays aborted


def test_ipv6_loopback(serve: Callable[..., TinyServer]) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    sock = socket.socket(socket.AF_INET6)
    try:
        sock.bind(("::1", 0))
    except OSError:
        sock.close()
        pytest.skip("no ::1")
    sock.listen(1)
    port = sock.getsockname()[1]
    heads: list[bytes] = []

    def one() -> None:
        conn, _ = sock.accept()
        with conn:
            answer("200 OK", heads)(conn)

    t = threading.Thread(target=one, daemon=True)
    t.start()
    try:
        assert Probe("::1", port, SPEC)() == ProbeResult(True, "GET /health -> 200")
        assert f"Host: [::1]:{port}" in heads[0].decode()
    finally:
        t.join(1.0)
        sock.close()
