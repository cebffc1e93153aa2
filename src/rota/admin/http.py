"""A small, strict HTTP/1.1 server for the admin listener: keep-alive, Content-Length
bodies only, bounded heads, bodies, connections and idle time.

The admin listener serves a handful of JSON endpoints and one page to operators and
Prometheus; it needs none of the data plane's machinery, and must never let its own load
reach the traffic (it runs in the supervisor, and caps what it accepts).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("rota")

MAX_HEAD = 16 * 1024
MAX_BODY = 64 * 1024
MAX_CONNECTIONS = 64
HEAD_TIMEOUT = 10.0
IDLE_TIMEOUT = 60.0
REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, value: object) -> Response:
    return Response(status, json.dumps(value, indent=1).encode() + b"\n")


def error(status: int, message: str) -> Response:
    return json_response(status, {"error": message})


Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class AdminServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.server: asyncio.Server | None = None
        self.connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        self.server = await asyncio.start_server(
            self._connection, host, port, limit=MAX_HEAD, backlog=64
        )
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.connections):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self.connections, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if len(self.connections) >= MAX_CONNECTIONS or task is None:
            writer.close()  # full: a flood of admin clients stops here, at no cost to traffic
            return
        self.connections.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            self.connections.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = True
        while True:
            try:
                head = await asyncio.wait_for(
                    reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT if first else IDLE_TIMEOUT
                )
            except asyncio.LimitOverrunError:
                await self._send(writer, error(431, "request head too large"), close=True)
                return
            first = False
            try:
                request, keep = parse_head(head)
                length = content_length(request.headers)
                if length:
                    request.body = await asyncio.wait_for(reader.readexactly(length), HEAD_TIMEOUT)
            except BadRequest as exc:
                await self._send(writer, error(exc.status, str(exc)), close=True)
                return
            try:
                response = await self.handler(request)
            except Exception:
                log.exception("admin: %s %s failed", request.method, request.path)
                response = error(500, "internal error: see rota's log")
            await self._send(writer, response, close=not keep)
            if not keep:
                return

    async def _send(self, writer: asyncio.StreamWriter, response: Response, *, close: bool) -> None:
        lines = [
            f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Unknown')}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
            "Cache-Control: no-store",
            "X-Content-Type-Options: nosniff",
        ]
        lines += [f"{k}: {v}" for k, v in response.headers.items()]
        if close:
            lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body)
        await writer.drain()


def parse_head(head: bytes) -> tuple[Request, bool]:
    """The request line and fields; returns the request and whether to keep alive."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise BadRequest(400, "undecodable request head") from None
    lines = text[:-4].split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0") or not parts[1].startswith("/"):
        raise BadRequest(400, f"malformed request line: {lines[0][:100]!r}")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest(400, f"malformed header field: {line[:100]!r}")
        headers[name.lower()] = value.strip()
    path, _, query = target.partition("?")
    connection = headers.get("connection", "").lower()
    keep = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    return Request(method, path, query, headers), keep


def content_length(headers: dict[str, str]) -> int:
    if "transfer-encoding" in headers:
        raise BadRequest(411, "send the body with Content-Length")
    raw = headers.get("content-length")
    if raw is None:
        return 0
    if not raw.isascii() or not raw.isdigit():
        raise BadRequest(400, f"bad Content-Length: {raw[:40]!r}")
    length = int(raw)
    if length > MAX_BODY:
        raise BadRequest(413, f"body over {MAX_BODY} bytes")
    return length
