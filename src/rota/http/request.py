"""Sans-I/O request parsing: bytes in, request events out, no sockets.

httptools (llhttp) does the byte-level parsing and rejects most malformed input. This layer
adds what llhttp leaves to the application: size limits while the head arrives, and
`rota.http.rules.decide_request` (Host rules, framing decision per RFC 9112 section 6.3,
everything llhttp lets through). Events go to a `RequestSink` (the client connection), three
calls per request: head, body*, end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

import httptools

from rota.config.model import LimitSpec
from rota.http.body_start import body_start, head_end, resume_head
from rota.http.chunks import ChunkLines
from rota.http.errors import ProtocolError, from_parser_error
from rota.http.head import BodyKind, RequestHead
from rota.http.headers import Headers
from rota.http.rules import check_body_size, decide_request
from rota.http.trailers import trailer_section

# One framing decision type for the whole data plane (rota.http.head).
Body = BodyKind
__all__ = ["IDEMPOTENT", "Body", "RequestHead", "RequestParser", "RequestSink"]

_VERSIONS: Final = {"1.1": (1, 1), "1.0": (1, 0)}
# Read once per request: a C static when compiled, not a global and an enum attribute.
_CHUNKED: Final = BodyKind.CHUNKED
_LENGTH: Final = BodyKind.LENGTH

# A Content-Length body at least this large is read past llhttp once its head's read is
# parsed (see RequestParser.feed): every read after that is body bytes up to the length,
# handed on as uvloop read them, where llhttp would copy each into a new `bytes` for
# on_body. A smaller body keeps to llhttp: the fresh parser its end takes costs more than
# the copy of a few reads.
BYPASS_MIN: Final = 64 * 1024


class RequestSink(Protocol):
    def on_request(self, head: RequestHead) -> None: ...
    def on_request_body(self, data: bytes) -> None: ...
    # A chunked body passed through: the client's own chunks (size lines, extensions, data),
    # as llhttp validated them, `body` data bytes in all; never the last chunk, which the
    # sink writes with the trailer fields at the end (on_request_end).
    def on_request_framed(self, data: bytes, body: int) -> None: ...
    # The trailer fields of a chunked request, as forwarded (trailers.trailer_section): called
    # just before on_request_end, only when there are some.
    def on_request_trailers(self, section: bytes) -> None: ...
    def on_request_end(self) -> None: ...


# RFC 9110 9.2.2: these may be retried automatically; anything else is never re-sent once
# any of its bytes went out.
IDEMPOTENT: Final = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})


class _Detached:
    """Sink and llhttp protocol of a closed connection: every event goes nowhere."""

    def on_request(self, head: RequestHead) -> None:
        pass

    def on_request_body(self, data: bytes) -> None:
        pass

    def on_request_framed(self, data: bytes, body: int) -> None:
        pass

    def on_request_trailers(self, section: bytes) -> None:
        pass

    def on_request_end(self) -> None:
        pass


_DETACHED: Final = _Detached()
_DETACHED_PARSER: Final = httptools.HttpRequestParser(_DETACHED)
_DETACHED_FEED: Final[Callable[[bytes], None]] = _DETACHED_PARSER.feed_data
_DETACHED_GET_METHOD: Final[Callable[[], bytes]] = _DETACHED_PARSER.get_method
_DETACHED_GET_VERSION: Final[Callable[[], str]] = _DETACHED_PARSER.get_http_version


class RequestParser:
    """Feeds client bytes to llhttp and turns its callbacks into validated events."""

    # httptools looks these callbacks up once per parser. Present as None, each lookup is a
    # plain read instead of an AttributeError raised and caught (measurable per connection).
    on_chunk_header = None
    on_chunk_complete = None

    __slots__ = (
        "_began",
        "_body_bytes",
        "_chunks",
        "_data",
        "_ended",
        "_error",
        "_feed",
        "_get_method",
        "_get_version",
        "_head_bytes",
        "_headers",
        "_left",
        "_limits",
        "_muted",
        "_parser",
        "_raw_from",
        "_sink",
        "_swallow_end",
        "_tail",
        "_trailers",
        "_upgrade_head",
        "_url",
        "held",
        "in_head",
    )

    def __init__(self, sink: RequestSink, limits: LimitSpec) -> None:
        self._sink = sink
        self._limits = limits
        self._use_parser(httptools.HttpRequestParser(self))
        self._url = b""
        self._headers: Headers = []
        # True while a request head has started but is not complete.
        self.in_head = False
        self._head_bytes = 0
        self._error: ProtocolError | None = None
        # After llhttp pauses on an Upgrade we strip, a fresh parser is primed with a
        # synthetic head (body_start.resume_head) whose callbacks are muted.
        self._muted = False
        self._swallow_end = False
        self._upgrade_head: RequestHead | None = None
        self._trailers: Headers = []
        self._body_bytes = 0
        self._began = False
        # The chunk-size lines of a chunked body, followed beside llhttp (chunks.ChunkLines);
        # the read being parsed (for on_headers_complete to find where a body starts in it);
        # the last bytes of a read that ended inside a head.
        self._chunks: ChunkLines | None = None
        self._data = b""
        self._tail = b""
        # A message ended in the read being parsed (then where a later head ends in it is
        # not known for sure: body_start.head_end).
        self._ended = False
        # Where the forwardable bytes of a passed-through chunked body begin in the read
        # being parsed; -1: none (chunks.ChunkLines.cut says where they end).
        self._raw_from = -1
        # The bytes still to come of a large Content-Length body, read past llhttp (feed).
        self._left = 0
        # Bytes after a WebSocket upgrade request, held unparsed until the backend answers:
        # tunnel data after a 101, the next request otherwise (release_held).
        self.held: bytes | None = None

    def _use_parser(self, parser: httptools.HttpRequestParser) -> None:
        """The parser, and its bound methods called on every request: one name lookup on
        the parser's type each, instead of one per call."""
        self._parser = parser
        self._feed: Callable[[bytes], None] = parser.feed_data
        self._get_method: Callable[[], bytes] = parser.get_method
        self._get_version: Callable[[], str] = parser.get_http_version

    def feed(self, data: bytes) -> None:
        """Parse `data`; raises ProtocolError for anything malformed or over a limit.

        After an error the parser is unusable: the connection must be closed. While bytes are
        held after a WebSocket upgrade request, `data` is only appended to them.
        """
        if self.held is not None:
            self.held += data
            return
        if self._left:
            self._read_past(data)
            return
        chunks = self._chunks
        if chunks is not None:
            # Inside a chunked body (or just after one): its size lines are checked before
            # llhttp parses them, so a refused one never reaches the backend.
            if chunks.checked:
                self._chunks = None
            elif not chunks.done:
                chunks.scan(data, 0)
                if chunks.raw:
                    self._raw_from = 0
        self._began = False
        self._ended = False
        self._data = data
        try:
            self._feed(data)
        except httptools.HttpParserUpgrade as exc:
            # llhttp stops after an Upgrade request (its head and message callbacks have
            # run) and took it as bodiless. Other than WebSocket, rota does not tunnel (rules
            # strip the Upgrade), so the backend answers a plain request: parsing goes on
            # with a fresh parser.
            # If the request has a body, llhttp skipped it, and the bytes that follow would
            # parse as a new request (smuggling): prime the fresh parser with a synthetic head
            # of the same framing, so they are read as this request's body.
            offset = int(exc.args[0])
            self._use_parser(httptools.HttpRequestParser(self))
            self._data = b""
            head = self._upgrade_head
            self._upgrade_head = None
            if head is not None and head.websocket:
                # A WebSocket handshake (bodiless, rules.decide_request): what follows is
                # tunnel data if the backend answers 101, the next request if not. Hold it
                # unparsed until then (the client connection stops reading meanwhile).
                self.held = data[offset:]
                return
            if head is not None and head.body is not Body.NONE:
                self._muted = True
                self._feed(resume_head(head))
                if head.body is Body.CHUNKED:
                    # The body starts at `offset`: follow it afresh from there.
                    self._chunks = ChunkLines()
            if offset < len(data):
                self.feed(data[offset:])
            return
        except httptools.HttpParserError as exc:
            self._data = b""
            self._raw_from = -1
            if self._error is not None:
                raise self._error from None
            raise from_parser_error(exc) from None
        self._data = b""
        if self._raw_from >= 0:
            # A passed-through chunked body goes on past this read, which llhttp accepted
            # whole: its bytes go on once both agree on the data in it.
            self._pass_on(data)
        chunks = self._chunks
        if chunks is not None and chunks.done and not chunks.checked and chunks.data >= 0:
            # The trailer section of a chunked body, unfinished (RFC 9112 7.1.2): llhttp
            # buffers a field until it is complete, so bound the bytes fed into it, as the
            # head's (a message that ended in this read is `checked`: nothing counts).
            chunks.trailer += len(data) - chunks.end if chunks.read is data else len(data)
            if chunks.trailer > self._limits.max_header_bytes:
                raise ProtocolError(431, "trailer section too large")
        if self.in_head:
            # The last bytes of the head so far: where it ends may be cut by the next read.
            self._tail = data[-3:] if self._began else (self._tail + data)[-3:]
            if not self._began:
                # llhttp buffers a field until it is complete, so a single endless header
                # would never reach on_header: bound the head by the bytes fed meanwhile.
                # Only whole reads inside one head count: a read where a head began may
                # hold the end of a body before it (a pipelined upload), and its head
                # bytes are bounded by the read size and re-checked by decide_request.
                self._head_bytes += len(data)
                limit = self._limits.max_header_bytes + self._limits.max_request_line
                if self._head_bytes > limit:
                    raise ProtocolError(431, "request head too large")

    # llhttp callbacks. Raising inside one aborts parsing; feed() re-raises _error.

    def on_message_begin(self) -> None:
        if self._muted:
            return
        self.in_head = True
        self._began = True
        self._body_bytes = 0
        self._head_bytes = 0
        self._url = b""
        self._headers = []

    def on_url(self, url: bytes) -> None:
        if self._muted:
            return
        self._url += url
        if len(self._url) > self._limits.max_request_line:
            self._fail(414, "request target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._muted:
            return
        if not self.in_head:
            # Trailer fields of a chunked body: counted as they come, checked and forwarded
            # at the end (trailers.trailer_section).
            trailers = self._trailers
            trailers.append((name, value))
            if len(trailers) > self._limits.max_headers:
                self._fail(431, "too many trailer fields")
            return
        headers = self._headers
        headers.append((name, value))
        if len(headers) > self._limits.max_headers:
            self._fail(431, "too many header fields")

    def on_headers_complete(self) -> None:
        if self._muted:
            self._muted = False
            return
        head = self._frame()
        self.in_head = False  # after: a head refused here is still the one arriving
        # llhttp flags an upgrade only for CONNECT (refused by the rules) or an Upgrade
        # field, which the rules mark as websocket or upgrade_stripped.
        if (head.websocket or head.upgrade_stripped) and self._parser.should_upgrade():
            self._upgrade_head = head
            # llhttp skips the body of an upgrade request and ends the message at once;
            # the real end comes from the primed parser (see feed).
            self._swallow_end = head.body is not Body.NONE
        self._sink.on_request(head)
        body = head.body
        if body is _CHUNKED:
            # Like every fault inside a chunked body, a refused size line comes after the
            # head went on (docs/http-strictness.md), never after a complete request.
            self._follow_chunks(head)
        elif (
            body is _LENGTH
            and head.content_length >= BYPASS_MIN
            and head.keep_alive
            and self._upgrade_head is None
        ):
            self._left = head.content_length  # on_body counts what this read holds

    def on_body(self, body: bytes) -> None:
        if self._left:
            self._left -= len(body)
        chunks = self._chunks
        if chunks is not None:
            chunks.seen += len(body)
        if self._limits.max_body_bytes is not None:
            # A Content-Length over the limit was refused with the head; a chunked body
            # is refused when it passes the limit (RFC 9110 15.5.14).
            self._body_bytes += len(body)
            check_body_size(self._body_bytes, self._limits)
        if chunks is not None and chunks.raw:
            return  # passed through in its own framing, read by read (_pass_on)
        self._sink.on_request_body(body)

    def on_message_complete(self) -> None:
        if self._swallow_end:
            self._swallow_end = False
            return
        self._ended = True
        chunks = self._chunks
        if chunks is not None and not chunks.checked:
            chunks.checked = True
            if not chunks.agrees():
                # ChunkLines lost step with llhttp (a body start found in the wrong place):
                # refuse rather than let size lines go unchecked.
                self._fail(400, "chunked body framing out of step")
            if self._raw_from >= 0:
                self._pass_on(self._data)  # the chunks before the last one
        trailers = self._trailers
        if trailers:
            self._trailers = []
            try:
                section = trailer_section(trailers, self._limits)
            except ProtocolError as exc:
                self._error = exc
                raise
            if section:
                self._sink.on_request_trailers(section)
        self._sink.on_request_end()

    def _follow_chunks(self, head: RequestHead) -> None:
        """A chunked request's head is complete: find where its body starts in the read being
        parsed and check the size lines there before llhttp reads them (chunks.ChunkLines).

        Where that start is certain (no other message ended earlier in the read:
        body_start.head_end), the body passes through in its own framing: the backend gets the
        client's chunks as they came, each read's once llhttp has accepted it, rather than
        de-chunked by llhttp and framed again. Otherwise (a chunked request pipelined behind
        another in one read, an Upgrade stripped) it is re-chunked as before."""
        data = self._data
        previous = self._chunks
        raw = not self._ended and self._upgrade_head is None and head.version == (1, 1)
        if raw:
            start = 0
            offset = head_end(data, self._began, self._tail)
        else:
            start = previous.end if previous is not None and previous.read is data else 0
            offset = body_start(data, start, self._began, self._tail, self._headers[-1][1])
        chunks = ChunkLines(raw and offset != -1)
        self._chunks = chunks
        if offset == -1:
            # Not a chunked body llhttp will accept (it refuses the size line), or the
            # start was missed: then the end of the message refuses it (agrees()).
            chunks.lose()
            return
        try:
            chunks.scan(data, offset)
        except ProtocolError as exc:
            self._error = exc
            raise
        if chunks.raw:
            self._raw_from = offset

    def _pass_on(self, data: bytes) -> None:
        """Hand on what a passed-through chunked body holds in `data`, the read llhttp has
        accepted up to the end or to the end of the message: from `_raw_from` to the cut
        ChunkLines found (the last chunk's line, or a size line the read cut), after a size
        line carried from earlier reads. ChunkLines and llhttp must agree on the data bytes
        in it, or nothing of it goes on (400)."""
        chunks = self._chunks
        start = self._raw_from
        self._raw_from = -1
        if chunks is None or not chunks.raw:
            return
        if not chunks.in_step():
            self._fail(400, "chunked body framing out of step")
        cut = chunks.cut
        end = len(data) if cut < 0 else cut
        piece = data if start == 0 and cut < 0 else data[start:end]
        carry = chunks.carry
        if carry:
            chunks.carry = b""
            piece = carry + piece
        body = chunks.seen - chunks.sent
        chunks.sent = chunks.seen
        if piece:
            self._sink.on_request_framed(piece, body)

    def _read_past(self, data: bytes) -> None:
        """A read of a large Content-Length body, which llhttp would copy into a new `bytes`:
        handed on as it is. Its length was checked with the head and llhttp counted the
        body bytes of the head's read, so what is left of it is known; at its end the
        message ends here, and a fresh parser (llhttp is still inside the body) takes what
        follows, as it would a new connection's bytes."""
        left = self._left
        n = len(data)
        sink = self._sink
        if n < left:
            self._left = left - n
            sink.on_request_body(data)
            return
        self._left = 0
        sink.on_request_body(data if n == left else data[:left])
        self._use_parser(httptools.HttpRequestParser(self))
        sink.on_request_end()
        if n > left:
            self.feed(data[left:])

    def _fail(self, status: int, reason: str) -> None:
        self._error = ProtocolError(status, reason)
        raise self._error

    def _frame(self) -> RequestHead:
        """Validate the head and decide the body framing (rota.http.rules)."""
        text = self._get_version()
        version = _VERSIONS.get(text)
        if version is None:
            major, _, minor = text.partition(".")
            version = (int(major), int(minor or 0))
        # llhttp (strict) has refused non-token methods and names and controls in values:
        # what is left to check is rota's own rules.
        return decide_request(self._get_method(), self._url, version, self._headers, self._limits)

    def request_line(self) -> tuple[bytes, bytes, tuple[int, int] | None]:
        """What had arrived of the request line of a head being refused (for access logs):
        method and target once the target began, the version once llhttp had read one;
        empty when nothing had."""
        if not self.in_head or not self._url:
            return b"", b"", None
        try:
            method = self._get_method()
            version = _VERSIONS.get(self._get_version())
        except Exception:  # llhttp had not got that far
            return b"", self._url, None
        return method, self._url, version

    def close(self) -> None:
        """The connection is gone. llhttp holds this wrapper's bound callbacks and the sink
        holds this wrapper: both are reference cycles, which only the cyclic garbage
        collector would free, one collection per few dozen closed connections. Breaking
        them here frees everything at once by reference counting."""
        self._parser = _DETACHED_PARSER
        self._feed = _DETACHED_FEED  # the bound methods hold the parser too
        self._get_method = _DETACHED_GET_METHOD
        self._get_version = _DETACHED_GET_VERSION
        self._sink = _DETACHED
        self._left = 0

    def release_held(self) -> bytes | None:
        """End the hold after a WebSocket upgrade request: the bytes held (None if nothing is
        held). After a 101 they are tunnel data; otherwise the caller feeds them back."""
        held = self.held
        self.held = None
        return held
