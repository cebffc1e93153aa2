"""The admin listener's small HTTP server: what it accepts and what it refuses, over a real
socket on 127.0.0.1 (rota.admin.http)."""

from __future__ import annotations

import asyncio
import json

import pytest

from rota.admin.http import MAX_BODY, AdminServer, Request, Response, json_response


async def echo(request: Request) -> Response:
    return json_response(
        200, {"method": request.method, "path": request.path, "body": request.body.decode()}
    )


async def exchange(raw: bytes) -> bytes:
    server = AdminServer(echo)
    port = await server.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(raw)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return data
    finally:
        await server.close()


def run(raw: bytes) -> bytes:
    return asyncio.run(exchange(raw))


def test_keep_alive_answers_each_request_in_turn() -> None:
    raw = (
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"
        b"GET /c HTTP/1.1\r\nConnection: close\r\n\r\n"
    )
    out = run(raw)
    assert out.count(b"HTTP/1.1 200 OK") == 3
    bodies = [json.loads(part.split(b"\r\n\r\n", 1)[1]) for part in out.split(b"HTTP/1.1 ")[1:]]
    assert [(b["method"], b["path"], b["body"]) for b in bodies] == [
        ("GET", "/a", ""),
        ("POST", "/b", "hi"),
        ("GET", "/c", ""),
    ]
    assert b"Connection: close" in out.rsplit(b"HTTP/1.1 ", 1)[1]


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /\r\n\r\n", b"400"),
        (b"GET nope HTTP/1.1\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\n Folded: x\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", b"411"),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1), b"413"),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n", b"431"),
    ],
)
def test_malformed_requests_get_a_json_error_and_a_close(raw: bytes, status: bytes) -> None:
    out = run(raw)
    assert out.startswith(b"HTTP/1.1 " + status), out[:80]
    assert b"Connection: close" in out
    assert "error" in json.loads(out.split(b"\r\n\r\n", 1)[1])
