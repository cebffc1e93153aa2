"""Trailer fields through a real `rota lb` process, between a Node.js server that speaks
them (tests/support/trailers_backend.js) and real clients (curl, raw sockets).

issue 19: rota dropped trailers; HAProxy forwards them (gRPC-Web and checksum trailers rely
on them). Forwarded both ways on chunked messages, minus hop-by-hop, framing and routing
fields; dropped for an HTTP/1.0 client, which has no chunked framing to carry them.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import REPO, Proc, start_lb, write_config

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs node")


@pytest.fixture(scope="module")
def lb_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    backend = Proc(["node", str(REPO / "tests/support/trailers_backend.js")])
    try:
        port = int(backend.wait_for("listening on").rsplit(" ", 1)[1])
        config = write_config(
            Path(tmp_path_factory.mktemp("trailers")) / "lb.json",
            [port],
            health_check={"type": "tcp", "interval": 30},
        )
        lb, lb_port = start_lb(config)
        try:
            yield lb_port
        finally:
            lb.stop()
    finally:
        backend.stop()


def curl(*args: str) -> bytes:
    run = subprocess.run(
        ["curl", "-sS", "--max-time", "10", *args], capture_output=True, check=True
    )
    return run.stdout


def test_response_trailers_reach_curl(lb_port: int) -> None:
    raw = curl("--raw", "-i", f"http://127.0.0.1:{lb_port}/")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"\r\nTrailer: X-Checksum, Grpc-Status" in head
    assert b"\r\nTransfer-Encoding: chunked" in head
    assert body.endswith(b"0\r\nX-Checksum: 5d41402a\r\nGrpc-Status: 0\r\n\r\n"), body
    assert b"hel" in body and b"lo" in body


def test_an_http_1_0_client_gets_the_body_without_trailers(lb_port: int) -> None:
    raw = curl("--http1.0", "--raw", "-i", f"http://127.0.0.1:{lb_port}/")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head
    assert body == b"hello"


def exchange(port: int, request: bytes) -> bytes:
    """Send `request`, read to the end of the connection (the request closes it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
        return data


UPLOAD = (
    b"POST /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTrailer: X-Checksum\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
)


def test_request_trailers_reach_the_server_but_never_a_framing_field(lb_port: int) -> None:
    answer = exchange(
        lb_port,
        UPLOAD + b"X-Checksum: 5d41402a\r\nHost: evil.example\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n",
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), answer
    assert json.loads(body) == {"length": 5, "trailers": {"x-checksum": "5d41402a"}}


def test_ten_thousand_trailer_fields_get_431_and_a_closed_connection(lb_port: int) -> None:
    answer = exchange(lb_port, UPLOAD + b"X-A: 1\r\n" * 10_000 + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    assert b"Connection: close" in answer.partition(b"\r\n\r\n")[0]
