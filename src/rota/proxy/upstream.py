"""Connections to backends, and the per-backend pool of idle keep-alive connections.

An `UpstreamConnection` carries one exchange at a time (no pipelining towards backends) and
parses the response with llhttp, handing events to the exchange. Between exchanges it sits
in its backend's `UpstreamPool`: a LIFO stack, so the most recently used (warmest, least
likely to have been closed by the backend's keep-alive timer) connection is reused first.

How many stay idle: as many as can be busy at once (`idle_bound`), as HAProxy bounds its
idle connections by the server's `maxconn`, never a small fixed number: a pool smaller
than the load closes connections that the next requests open again (500 clients over three
servers with 128 kept each opened about 4,000 connections in 4 s). Surplus connections are
closed by age instead: the stack is ordered by the time each went idle, so those a lower
load no longer reaches sink to its bottom and are closed after `timeouts.pool_idle`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import httptools

from rota.config.model import LimitSpec
from rota.http.headers import Headers
from rota.pool import Backend
from rota.proxy.batching import BatchedWriter, WriteBatch

if TYPE_CHECKING:
    from rota.proxy.exchange import Exchange
    from rota.proxy.websocket import Tunnel

# An exchange's `response_time` while the read that brought its response head is handled:
# stamped at the end of that read, or as the exchange ends in it (one clock read for both).
HEAD_PENDING: Final = -2.0


# The parser of a closed connection: its protocol has no callbacks.
_DETACHED_PARSER: Final = httptools.HttpResponseParser(object())


class UpstreamConnection(BatchedWriter):
    # httptools looks these callbacks up once per parser. Present as None, each lookup is a
    # plain read instead of an AttributeError raised and caught (measurable per connection).
    on_chunk_header = None
    on_chunk_complete = None

    __slots__ = (
        "_done",
        "_feed",
        "_headers",
        "_keep_alive",
        "_left",
        "_reason",
        "_skip_body",
        "_status_code",
        "backend",
        "exchange",
        "idle_since",
        "pool",
        "reading_paused",
        "received",
        "reusable",
        "tunnel",
        "uses",
    )

    def __init__(self, backend: Backend, pool: UpstreamPool) -> None:
        self.backend = backend
        self.pool = pool
        self.init_writer(pool.batch)
        self.exchange: Exchange | None = None
        self._use_parser(httptools.HttpResponseParser(self))
        self._headers: Headers = []
        self._reason = b""
        self._done = False
        self._skip_body = False
        # The bytes still to come of a large Content-Length body, read past llhttp
        # (read_past), as rota.http.request does for request bodies.
        self._left = 0
        self.reusable = True
        self.received = False  # any response byte for the current exchange
        self.reading_paused = False
        self.idle_since = 0.0
        self.uses = 0
        self.tunnel: Tunnel | None = None  # after a 101 (rota.proxy.websocket)

    def _use_parser(self, parser: httptools.HttpResponseParser) -> None:
        """Keep the bound methods of the parser called on every response: one name lookup
        on the parser's type each, instead of one per call. They hold the parser."""
        self._feed: Callable[[bytes], None] = parser.feed_data
        self._status_code: Callable[[], int] = parser.get_status_code
        self._keep_alive: Callable[[], bool] = parser.should_keep_alive

    def __repr__(self) -> str:
        state = "active" if self.exchange is not None else "idle"
        return f"<UpstreamConnection {self.backend.name} {state} uses={self.uses}>"

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.bind(transport)

    def data_received(self, data: bytes) -> None:
        tunnel = self.tunnel
        if tunnel is not None:
            tunnel.from_upstream(data)
            return
        exchange = self.exchange
        if exchange is None:
            # A backend must not speak unasked (RFC 9112 9.3): never reuse this one.
            self.reusable = False
            self.close()
            return
        self.received = True
        batch = self._batch
        batch.active = True
        if self._left:
            try:
                self._read_past(exchange, data)
            finally:
                batch.flush()
            return
        try:
            self._feed(data)
        except httptools.HttpParserUpgrade as exc:
            # After a 101 that opened a tunnel, llhttp stops at the end of its head: what
            # follows is the backend's first tunnel bytes.
            tunnel = self.tunnel
            if tunnel is None:
                self.reusable = False
                exchange.on_upstream_error(self, "unexpected upgrade")
            else:
                rest = data[int(exc.args[0]) :]
                if rest:
                    tunnel.from_upstream(rest)
            return
        except httptools.HttpParserError as exc:
            self.reusable = False
            if self._done:
                # Junk after a complete response in the same read: the response stands;
                # only this connection is lost (never pooled).
                self._done = False
                exchange.on_response_end()
                return
            exchange.on_upstream_error(self, f"invalid response: {exc}")
            return
        else:
            if self._skip_body:
                # The response to HEAD has a head only; llhttp cannot be told, so start
                # the next response on a fresh parser (RFC 9110 9.3.2).
                self._skip_body = False
                self._use_parser(httptools.HttpResponseParser(self))
            if self._done:
                self._done = False
                exchange.on_response_end()
            elif exchange.response_time == HEAD_PENDING:
                exchange.stamp_head()  # the head came in this read; the body follows
        finally:
            batch.flush()

    def eof_received(self) -> bool:
        if self.tunnel is not None:
            return self.tunnel.upstream_eof()  # half-close, passed on to the client
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        exchange = self.exchange
        if exchange is not None:
            exchange.on_upstream_lost(self, exc)
        else:
            self.pool.discard(self)
        # llhttp holds this connection's bound callbacks: a reference cycle, broken here so
        # the connection is freed by reference counting, not by the garbage collector.
        self._use_parser(_DETACHED_PARSER)

    def pause_writing(self) -> None:
        self.widen()
        if self.exchange is not None:
            self.exchange.downstream.pause_reading()

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.downstream.resume_reading()

    # llhttp callbacks. There is no on_message_begin: one callback fewer per response, and
    # the head's fields are handed over and reset in on_headers_complete instead.

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        headers = self._headers
        reason = self._reason
        self._headers = []
        self._reason = b""
        exchange = self.exchange
        if exchange is None:
            return
        if self._done:
            # Another response after a complete one, in the same read: the backend spoke
            # unasked (RFC 9112 9.3). It is not the client's; drop it and the connection.
            self.reusable = False
            return
        status = self._status_code()
        if not self._keep_alive():
            self.reusable = False
        if exchange.on_response_head(status, reason, headers):
            self._skip_body = True
            self._done = True

    def on_body(self, body: bytes) -> None:
        if self._skip_body or self._done:
            self.reusable = False  # bytes after a HEAD response, or after a response
            return
        if self._left:
            self._left -= len(body)
        exchange = self.exchange
        if exchange is not None:
            exchange.on_response_body(body)

    def on_message_complete(self) -> None:
        trailers = self._headers
        if trailers:
            # Trailer fields of a chunked response (llhttp reports them through on_header
            # after on_headers_complete): this response's, handed on below; they must never
            # become fields of the next response on this connection.
            self._headers = []
        exchange = self.exchange
        if exchange is None or self._skip_body or self._done or self.tunnel is not None:
            return
        if exchange.on_interim_end():
            return  # a 1xx response ended; the final one follows
        if trailers:
            if not self._keep_alive():
                # llhttp reads `Connection: close` in trailers too, and would refuse any
                # later response on this connection: never pooled.
                self.reusable = False
            exchange.on_response_trailers(trailers)
        self._done = True

    def read_past(self, length: int) -> None:
        """The response head just parsed announced a Content-Length body of `length`
        (at least BYPASS_MIN): once the head's read is parsed, its reads go on as uvloop
        read them, without llhttp's copy of each into a new `bytes` (_read_past)."""
        self._left = length  # on_body counts what the head's read holds

    def _read_past(self, exchange: Exchange, data: bytes) -> None:
        left = self._left
        n = len(data)
        if n < left:
            self._left = left - n
            exchange.on_response_body(data)
            return
        self._left = 0
        if n > left:
            # Bytes beyond the response: the backend spoke unasked (RFC 9112 9.3).
            self.reusable = False
            data = data[:left]
        exchange.on_response_body(data)
        # llhttp is still inside the body: the next response gets a fresh parser.
        self._use_parser(httptools.HttpResponseParser(self))
        exchange.on_response_end()

    # for the exchange and the pool

    def pause_reading(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing() and not self.reading_paused:
            self.reading_paused = True
            transport.pause_reading()

    def resume_reading(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing() and self.reading_paused:
            self.reading_paused = False
            transport.resume_reading()

    def close(self) -> None:
        self.reusable = False
        self.flush()
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()


def idle_bound(limits: LimitSpec, max_requests: int) -> int:
    """Idle connections one backend keeps: the pool's `pool_size` when set, else as many as
    can be busy at once: the server's `max_requests` (each request in flight holds one
    connection), else the client connection limit (`max_connections`)."""
    if limits.pool_size is not None:
        return limits.pool_size
    return max_requests or limits.max_connections


class UpstreamPool:
    """Idle keep-alive connections to one backend."""

    __slots__ = ("_idle", "backend", "batch", "limit", "max_idle_seconds")

    def __init__(
        self, backend: Backend, limit: int, max_idle_seconds: float, batch: WriteBatch
    ) -> None:
        self.backend = backend
        self.batch = batch
        self.limit = limit
        self.max_idle_seconds = max_idle_seconds
        self._idle: list[UpstreamConnection] = []

    def __repr__(self) -> str:
        return f"<UpstreamPool {self.backend.name} [{len(self._idle)} idle]>"

    def __len__(self) -> int:
        return len(self._idle)

    def acquire(self) -> UpstreamConnection | None:
        idle = self._idle
        while idle:
            conn = idle.pop()
            if conn.transport is not None and not conn._is_closing():
                return conn
        return None

    def release(self, conn: UpstreamConnection, now: float) -> None:
        """Take a connection back after a complete exchange, or close it."""
        conn.exchange = None
        if not conn.reusable:
            conn.close()
            return
        idle = self._idle
        if len(idle) >= self.limit:
            if not idle:
                conn.close()  # pool_size 0: keep none
                return
            idle.pop(0).close()  # full: the oldest goes, the warm one stays
        conn.received = False
        conn.idle_since = now
        if conn.reading_paused:
            conn.resume_reading()  # notice the backend closing while idle
        idle.append(conn)

    def discard(self, conn: UpstreamConnection) -> None:
        if conn in self._idle:
            self._idle.remove(conn)

    def expire(self, now: float) -> None:
        """Close connections idle for longer than `max_idle_seconds` (oldest first)."""
        idle = self._idle
        cutoff = now - self.max_idle_seconds
        stale = 0
        # Ordered by idle_since (release appends): the stale ones are a prefix.
        while stale < len(idle) and idle[stale].idle_since < cutoff:
            stale += 1
        if stale:
            old = idle[:stale]
            del idle[:stale]
            for conn in old:
                conn.close()

    def close_all(self) -> None:
        while self._idle:
            self._idle.pop().close()
