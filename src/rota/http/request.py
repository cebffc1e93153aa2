"""Sans-I/O request parsing: bytes in, request events out, no sockets.

httptools (llhttp) does the byte-level parsing and rejects most malformed input. This layer
adds what llhttp leaves to the application: size limits, Host rules, and the framing
decision (RFC 9112 section 6.3) that decides how many bytes belong to the body. Events go to
a `RequestSink` (the client connection), three calls per request: head, body*, end.
"""

from __future__ import annotations

import enum
from typing import Protocol

import httptools

from rota.config.model import LimitSpec
from rota.http.errors import ProtocolError
from rota.http.headers import HOP_BY_HOP, Headers, connection_tokens


class Body(enum.Enum):
    NONE = 0
    LENGTH = 1
    CHUNKED = 2


class RequestHead:
    """One parsed, validated request head."""

    __slots__ = (
        "body",
        "content_length",
        "drop",
        "expect_continue",
        "headers",
        "host",
        "keep_alive",
        "method",
        "target",
        "upgrade",
        "version",
    )

    def __init__(
        self,
        method: bytes,
        target: bytes,
        version: str,
        headers: Headers,
        host: bytes,
        keep_alive: bool,
        body: Body,
        content_length: int,
        drop: frozenset[bytes],
        upgrade: bytes | None,
        expect_continue: bool,
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.host = host
        self.keep_alive = keep_alive
        self.body = body
        self.content_length = content_length
        self.drop = drop  # header names not to forward (hop-by-hop + Connection-named)
        self.upgrade = upgrade  # the protocol asked for (e.g. b"websocket"), or None
        self.expect_continue = expect_continue

    def __repr__(self) -> str:
        return f"<RequestHead {self.method.decode()} {self.target!r} HTTP/{self.version}>"


class RequestSink(Protocol):
    def on_request(self, head: RequestHead) -> None: ...
    def on_request_body(self, data: bytes) -> None: ...
    def on_request_end(self) -> None: ...


# RFC 9110 9.2.2: these may be retried automatically; anything else is never re-sent once
# any of its bytes went out.
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})


class RequestParser:
    """Feeds client bytes to llhttp and turns its callbacks into validated events."""

    __slots__ = (
        "_error",
        "_head_bytes",
        "_headers",
        "_in_head",
        "_limits",
        "_parser",
        "_sink",
        "_url",
    )

    def __init__(self, sink: RequestSink, limits: LimitSpec) -> None:
        self._sink = sink
        self._limits = limits
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: Headers = []
        self._in_head = False
        self._head_bytes = 0
        self._error: ProtocolError | None = None

    @property
    def in_head(self) -> bool:
        """True while a request head has started but is not complete."""
        return self._in_head

    def feed(self, data: bytes) -> None:
        """Parse `data`; raises ProtocolError for anything malformed or over a limit.

        After an error the parser is unusable: the connection must be closed.
        """
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            # llhttp stops after an Upgrade request (its head and message callbacks have
            # run). Upgrade is hop-by-hop and is not forwarded, so the backend answers a
            # plain request; parsing goes on with a fresh parser for what follows.
            offset = int(exc.args[0])
            self._parser = httptools.HttpRequestParser(self)
            if offset < len(data):
                self.feed(data[offset:])
            return
        except httptools.HttpParserError as exc:
            if self._error is not None:
                raise self._error from None
            raise ProtocolError(400, f"malformed request: {exc}") from None
        if self._in_head:
            # llhttp buffers a field until it is complete, so a single endless header
            # would never reach on_header: bound the head by the bytes fed meanwhile.
            self._head_bytes += len(data)
            if self._head_bytes > self._limits.max_header_bytes + self._limits.max_request_line:
                raise ProtocolError(431, "request head too large")

    # llhttp callbacks. Raising inside one aborts parsing; feed() re-raises _error.

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._url = b""
        self._headers = []

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._limits.max_request_line:
            self._fail(414, "request target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self._headers
        headers.append((name, value))
        if len(headers) > self._limits.max_headers:
            self._fail(431, "too many header fields")

    def on_headers_complete(self) -> None:
        self._in_head = False
        head = self._frame()
        self._sink.on_request(head)

    def on_body(self, body: bytes) -> None:
        self._sink.on_request_body(body)

    def on_message_complete(self) -> None:
        self._sink.on_request_end()

    def _fail(self, status: int, reason: str) -> None:
        self._error = ProtocolError(status, reason)
        raise self._error

    def _frame(self) -> RequestHead:
        """Validate the head and decide the body framing (RFC 9112 6.3)."""
        parser = self._parser
        method = parser.get_method()
        version = parser.get_http_version()
        headers = self._headers
        limits = self._limits
        size = len(self._url)
        host: bytes | None = None
        content_length: bytes | None = None
        transfer_encoding: bytes | None = None
        upgrade: bytes | None = None
        expect_continue = False
        for name, value in headers:
            size += len(name) + len(value) + 4
            lname = name.lower()
            if lname == b"host":
                if host is not None:
                    self._fail(400, "more than one Host field")
                host = value
            elif lname == b"content-length":
                if content_length is not None and content_length != value:
                    self._fail(400, "conflicting Content-Length fields")
                content_length = value
            elif lname == b"transfer-encoding":
                transfer_encoding = (
                    value if transfer_encoding is None else transfer_encoding + b"," + value
                )
            elif lname == b"upgrade":
                upgrade = value.strip().lower()
            elif lname == b"expect":
                expect_continue = value.strip().lower() == b"100-continue"
        if size > limits.max_header_bytes:
            self._fail(431, "request head too large")
        if method == b"CONNECT":
            self._fail(405, "CONNECT is not supported")
        if host is None:
            if version == "1.1":
                self._fail(400, "missing Host field")  # RFC 9112 3.2
            host = b""
        body = Body.NONE
        length = 0
        if transfer_encoding is not None:
            if content_length is not None:
                self._fail(400, "both Content-Length and Transfer-Encoding")  # RFC 9112 6.1
            if version != "1.1":
                self._fail(400, "Transfer-Encoding in an HTTP/1.0 request")  # RFC 9112 6.1
            if transfer_encoding.strip().lower() != b"chunked":
                self._fail(501, "unsupported Transfer-Encoding")
            body = Body.CHUNKED
        elif content_length is not None:
            if not content_length.isdigit() or len(content_length) > 18:
                self._fail(400, "invalid Content-Length")  # RFC 9110 8.6: 1*DIGIT
            length = int(content_length)
            if length:
                body = Body.LENGTH
        max_body = limits.max_body_bytes
        if max_body is not None and body is not Body.NONE and length > max_body:
            self._fail(413, "request body too large")
        tokens = connection_tokens(headers)
        drop = HOP_BY_HOP | tokens if tokens else HOP_BY_HOP
        return RequestHead(
            method=method,
            target=self._url,
            version=version,
            headers=headers,
            host=host,
            keep_alive=parser.should_keep_alive(),
            body=body,
            content_length=length,
            drop=drop,
            upgrade=upgrade,
            expect_continue=expect_continue,
        )
