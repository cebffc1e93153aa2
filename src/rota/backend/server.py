"""The simple HTTP backend: the seed's demo server, grown into a benchmark-grade one.

HTTP/1.1 with keep-alive and pipelining, asyncio + httptools. Routes:
  GET  /health          200 "ok" (or what /control/health made it: fail, hang; sickness.py)
  GET  /control/health  the /health switch's state as JSON; POST ok|fail|hang|CODE sets it
  GET  /bytes/N         N bytes of a deterministic pattern (`?chunked=1`: chunked framing;
                        `?close=1`: no length, ends by closing), streamed with back-pressure
  POST /sha256          the SHA-256 and length of the request body, as "HEX LENGTH\n"
  GET  /request         the request line and header fields as received, one per line
  anything else         200 "Hello from NAME\n" with `X-Served-By: NAME` (after --delay, or a
                        --service-time in one of --concurrency slots: service.py)
The request body is read and discarded (or hashed, for /sha256).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from http import HTTPStatus
from typing import cast
from urllib.parse import parse_qs, urlsplit

import httptools

from rota.backend.service import Slots
from rota.backend.sickness import CONTROL_PATH, ControlError, Sickness

BLOCK = 64 * 1024
CONTROL = CONTROL_PATH.encode()


def pattern_block() -> bytes:
    """The repeating 64 KiB block /bytes/N sends: 0..255 over and over."""
    return bytes(range(256)) * (BLOCK // 256)


class BackendState:
    """What every connection of one backend server shares."""

    def __init__(
        self,
        name: str,
        sickness: Sickness | None = None,
        delay: float = 0.0,
        slots: Slots | None = None,
    ) -> None:
        self.name = name
        # Seconds every answer but /health waits: a slow server, for balancing benchmarks.
        self.delay = delay
        # --service-time and --concurrency: drawn service times, limited slots, a FIFO queue.
        self.slots = slots
        self.sickness = sickness if sickness is not None else Sickness()
        self.hello = f"Hello from {name}\n".encode()
        self.served_by = name.encode()
        self.block = pattern_block()


class BackendConnection(asyncio.Protocol):
    __slots__ = (
        "_control",
        "_expect",
        "_hash",
        "_headers",
        "_length",
        "_parser",
        "_streaming",
        "_url",
        "state",
        "transport",
    )

    def __init__(self, state: BackendState) -> None:
        self.state = state
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._expect = False
        self._hash: hashlib._Hash | None = None
        self._length = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._streaming: _Stream | None = None
        self._control: bytearray | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._send(400, b"upgrade not supported\n", close=True)
        except httptools.HttpParserError:
            self._send(400, b"bad request\n", close=True)

    def pause_writing(self) -> None:
        if self._streaming is not None:
            self._streaming.paused = True

    def resume_writing(self) -> None:
        stream = self._streaming
        if stream is not None:
            stream.paused = False
            stream.pump()

    def connection_lost(self, exc: Exception | None) -> None:
        self._streaming = None

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._expect = False
        self._hash = None
        self._length = 0
        self._headers = []
        self._control = None

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        if name.lower() == b"expect" and value.lower() == b"100-continue":
            self._expect = True

    def on_headers_complete(self) -> None:
        if self._url.startswith(b"/sha256"):
            self._hash = hashlib.sha256()
        elif self._url == CONTROL:
            self._control = bytearray()
        if self._expect and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self._hash is not None:
            self._hash.update(body)
            self._length += len(body)
        elif self._control is not None and len(self._control) < 64:
            self._control += body[:64]

    def on_message_complete(self) -> None:
        url = self._url
        keep = self._parser.should_keep_alive()
        head_only = self._parser.get_method() == b"HEAD"
        if url == b"/health":
            status = self.state.sickness.health(time.monotonic())
            if status is None:
                return  # hanging on purpose: no answer, the connection stays open
            body = b"ok\n" if status < 400 else b"sick\n"
            self._send(status, body, close=not keep, head_only=head_only)
        elif self._control is not None:
            self._answer_control(keep, head_only)
        elif self._hash is not None:
            body = f"{self._hash.hexdigest()} {self._length}\n".encode()
            self._send(200, body, close=not keep, head_only=head_only)
        elif url == b"/request":
            method = self._parser.get_method()
            lines = [b"%s %s" % (method, url)] + [b"%s: %s" % h for h in self._headers]
            self._send(200, b"\n".join(lines) + b"\n", close=not keep, head_only=head_only)
        elif url.startswith(b"/bytes/"):
            self._start_stream(url, keep, head_only)
        elif self.state.slots is not None:
            self.state.slots.admit(
                functools.partial(
                    self._send, 200, self.state.hello, close=not keep, head_only=head_only
                )
            )
        elif self.state.delay > 0:
            asyncio.get_running_loop().call_later(
                self.state.delay,
                functools.partial(
                    self._send, 200, self.state.hello, close=not keep, head_only=head_only
                ),
            )
        else:
            self._send(200, self.state.hello, close=not keep, head_only=head_only)

    # responses

    def _send(self, status: int, body: bytes, *, close: bool, head_only: bool = False) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        try:
            reason = HTTPStatus(status).phrase.encode()
        except ValueError:
            reason = b"Unknown"
        head = (
            b"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
            b"X-Served-By: %s\r\n%s\r\n"
            % (
                status,
                reason,
                len(body),
                self.state.served_by,
                b"Connection: close\r\n" if close else b"",
            )
        )
        transport.write(head if head_only else head + body)
        if close:
            transport.close()

    def _answer_control(self, keep: bool, head_only: bool) -> None:
        sickness = self.state.sickness
        if self._parser.get_method() == b"POST":
            try:
                sickness.control(bytes(self._control or b""))
            except ControlError as exc:
                self._send(400, str(exc).encode(), close=not keep, head_only=head_only)
                return
        self._send(200, sickness.report(), close=not keep, head_only=head_only)

    def _start_stream(self, url: bytes, keep: bool, head_only: bool) -> None:
        transport = self.transport
        if transport is None:
            return
        parts = urlsplit(url.decode("latin-1"))
        query = parse_qs(parts.query)
        try:
            total = int(parts.path.rsplit("/", 1)[1])
        except ValueError:
            self._send(400, b"bad length\n", close=True)
            return
        chunked = query.get("chunked") == ["1"]
        until_close = query.get("close") == ["1"]
        if until_close:
            framing = b"Connection: close\r\n"
        elif chunked:
            framing = b"Transfer-Encoding: chunked\r\n"
        else:
            framing = b"Content-Length: %d\r\n" % total
        if not keep and not until_close:
            framing += b"Connection: close\r\n"
        transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            b"X-Served-By: %s\r\n%s\r\n" % (self.state.served_by, framing)
        )
        if head_only:
            return
        self._streaming = _Stream(self, transport, total, chunked, close=until_close or not keep)
        self._streaming.pump()


class _Stream:
    """Writes /bytes/N while the transport takes it; resumes on resume_writing."""

    __slots__ = ("chunked", "close", "conn", "left", "paused", "transport")

    def __init__(
        self,
        conn: BackendConnection,
        transport: asyncio.Transport,
        total: int,
        chunked: bool,
        *,
        close: bool,
    ) -> None:
        self.conn = conn
        self.transport = transport
        self.left = total
        self.chunked = chunked
        self.close = close
        self.paused = False

    def pump(self) -> None:
        block = self.conn.state.block
        transport = self.transport
        while self.left > 0 and not self.paused and not transport.is_closing():
            n = min(self.left, BLOCK)
            data = block[:n]
            if self.chunked:
                transport.writelines((b"%x\r\n" % n, data, b"\r\n"))
            else:
                transport.write(data)
            self.left -= n
        if self.left == 0:
            if self.chunked:
                transport.write(b"0\r\n\r\n")
            if self.close:
                transport.close()
            self.conn._streaming = None


async def serve_backend(
    host: str,
    port: int,
    name: str,
    stop: asyncio.Event,
    sickness: Sickness | None = None,
    delay: float = 0.0,
    slots: Slots | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    state = BackendState(name, sickness, delay, slots)
    server = await loop.create_server(
        lambda: BackendConnection(state), host=host, port=port, reuse_address=True, backlog=1024
    )
    print(f"backend {name} listening on http://{host}:{port}", flush=True)
    try:
        await stop.wait()
    finally:
        server.close()
