"""A minimal request reader over httptools + rota.http.rules, used by unit tests.

It does what the data plane's parser wrapper must do, without sockets: feed raw bytes, collect
callbacks, run `check_request` in on_headers_complete, enforce the size limits on raw bytes
while the head arrives, check trailers, and resume after an Upgrade that is stripped. The
result lists every request that would be forwarded (head decision + body bytes) and the
ProtocolError that ended the stream, if any. After an error nothing more is parsed: the
connection is closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httptools

from rota.config.model import LimitSpec
from rota.http.errors import ProtocolError, from_parser_error
from rota.http.rules import (
    RequestHead,
    check_body_size,
    check_field_count,
    check_head_size,
    check_request,
    check_request_line_length,
    check_trailers,
    resume_head,
)


@dataclass
class Forwarded:
    head: RequestHead
    body: bytearray = field(default_factory=bytearray)
    complete: bool = False
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass
class StreamResult:
    requests: list[Forwarded]
    error: ProtocolError | None
    tunnel: bytes = b""  # bytes after a WebSocket upgrade head, relayed only after a 101

    @property
    def status(self) -> int:
        """What the client sees for the first problem: the error status, else 200."""
        return self.error.status if self.error is not None else 200


class _Reader:
    def __init__(self, limits: LimitSpec) -> None:
        self.limits = limits
        self.requests: list[Forwarded] = []
        self.muted = False  # feeding a synthetic resume head
        self._reset()

    def _reset(self) -> None:
        self.url = bytearray()
        self.fields: list[tuple[bytes, bytes]] = []
        self.in_head = True
        self.current: Forwarded | None = None
        self.body_bytes = 0

    # httptools callbacks
    def on_message_begin(self) -> None:
        if not self.muted:
            self._reset()

    def on_url(self, piece: bytes) -> None:
        if self.muted:
            return
        self.url += piece
        check_request_line_length(len(self.url), self.limits)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.muted:
            return
        if self.in_head:
            self.fields.append((name, value))
            check_field_count(len(self.fields), self.limits)
        else:
            assert self.current is not None
            self.current.trailers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.muted:
            self.muted = False
            return
        self.in_head = False
        version = self.parser.get_http_version().split(".")
        head = check_request(
            self.parser.get_method(),
            bytes(self.url),
            (int(version[0]), int(version[1])),
            self.fields,
            self.limits,
        )
        self.current = Forwarded(head)
        self.requests.append(self.current)

    def on_body(self, data: bytes) -> None:
        assert self.current is not None
        self.current.body += data
        self.body_bytes += len(data)
        check_body_size(self.body_bytes, self.limits)

    def on_message_complete(self) -> None:
        assert self.current is not None
        check_trailers(self.current.trailers, self.limits)
        self.current.complete = True
        self.in_head = True

    def run(self, data: bytes, piece: int) -> StreamResult:
        self.parser = httptools.HttpRequestParser(self)
        head_bytes = 0
        pos = 0
        while pos < len(data):
            chunk = data[pos : pos + piece]
            try:
                self.parser.feed_data(chunk)
            except httptools.HttpParserUpgrade as upgrade:
                offset = pos + int(upgrade.args[0])
                current = self.current
                if current is not None and current.head.websocket:
                    current.complete = True
                    return StreamResult(self.requests, None, tunnel=data[offset:])
                if current is None:
                    return StreamResult(self.requests, ProtocolError(400, "unexpected upgrade"))
                # The Upgrade is stripped: llhttp took the request as bodiless, so re-frame
                # the rest with a fresh parser primed by a synthetic head.
                self.parser = httptools.HttpRequestParser(self)
                current.complete = False
                self.in_head = False
                synthetic = resume_head(current.head)
                if synthetic:
                    self.muted = True
                    self.parser.feed_data(synthetic)
                else:
                    current.complete = True
                    self.in_head = True
                pos = offset
                head_bytes = 0
                continue
            except httptools.HttpParserError as exc:
                return StreamResult(self.requests, from_parser_error(exc))
            except ProtocolError as exc:  # pragma: no cover - httptools always wraps
                return StreamResult(self.requests, exc)
            pos += len(chunk)
            if self.in_head and (self.url or self.fields or head_bytes):
                head_bytes += len(chunk)
                try:
                    check_head_size(head_bytes, self.limits)
                except ProtocolError as exc:
                    return StreamResult(self.requests, exc)
            else:
                head_bytes = 0
        return StreamResult(self.requests, None)


def read_stream(data: bytes, limits: LimitSpec | None = None, piece: int = 65536) -> StreamResult:
    """Parse `data` as a client's byte stream, `piece` bytes per read."""
    return _Reader(limits or LimitSpec()).run(data, piece)
