"""One request/response cycle: pick a backend, get a connection, stream both ways.

The exchange is where failures become statuses: nothing answered -> 502, no backend -> 503,
too slow -> 504 (the deadlines live on the client connection; see `ClientConnection.expire`).
It never fakes a complete response: a backend that dies mid-body makes rota close the
client connection with the response short of its framing.
"""

from __future__ import annotations

import asyncio
import enum
import errno
from typing import TYPE_CHECKING, Final, cast

from rota.http.headers import (
    HOP_BY_HOP,
    Headers,
    build_response_head,
    connection_options,
    response_head_parts,
)
from rota.http.request import IDEMPOTENT, Body, RequestHead
from rota.http.rules import build_request_head
from rota.pool import Backend
from rota.proxy.batching import as_protocol
from rota.proxy.upstream import UpstreamConnection
from rota.proxy.websocket import Tunnel

if TYPE_CHECKING:
    from rota.proxy.client import ClientConnection

# Request body bytes held while no backend connection is ready; past this the client's
# reading pauses (back-pressure instead of buffering a whole upload).
PENDING_LIMIT: Final = 256 * 1024


class ResponseBody(enum.Enum):
    NONE = 0
    LENGTH = 1
    CHUNKED = 2
    UNTIL_CLOSE = 3


def describe(exc: BaseException) -> str:
    """A short reason for a failed backend connection, for logs and passive checks."""
    if isinstance(exc, TimeoutError):
        return "connect timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, OSError) and exc.errno is not None:
        return errno.errorcode.get(exc.errno, str(exc.errno)).lower()
    return type(exc).__name__


class Exchange:
    __slots__ = (
        "backend",
        "cancelled",
        "client",
        "finished",
        "head",
        "interim",
        "keep_client",
        "none_left",
        "pending",
        "pending_size",
        "rechunk",
        "request_done",
        "response_body",
        "response_started",
        "retried",
        "reused",
        "tried",
        "upstream",
    )

    def __init__(self, client: ClientConnection, head: RequestHead) -> None:
        self.client = client
        self.head = head
        self.backend: Backend | None = None
        self.upstream: UpstreamConnection | None = None
        self.tried: tuple[Backend, ...] = ()
        self.pending: list[bytes] = []
        self.pending_size = 0
        self.request_done = False
        self.response_started = False
        self.response_body = ResponseBody.NONE
        self.rechunk = False
        self.interim = False
        self.finished = False
        self.cancelled = False
        self.reused = False
        self.retried = False
        self.keep_client = head.keep_alive
        # The status when no backend is left to try: 503, or 502 once a backend took the
        # request and closed without an answer (a bad gateway, not an unavailable one).
        self.none_left = 503

    def __repr__(self) -> str:
        where = self.backend.name if self.backend else "-"
        return f"<Exchange {self.head!r} -> {where}>"

    # Request side: called by the client connection.

    def start(self) -> None:
        """Pick a backend and send the request there (now if a pooled connection is idle)."""
        ctx = self.client.ctx
        backend = ctx.balancer.pick(self.tried)
        if backend is None:
            self.fail(self.none_left)
            return
        self.backend = backend
        conn = ctx.upstream_pools[backend.index].acquire()
        if conn is not None:
            self.reused = True
            self._attach(conn)
        else:
            ctx.loop.create_task(self._connect(backend))

    def on_request_body(self, data: bytes) -> None:
        if self.finished:
            return
        if self.head.body is Body.CHUNKED:
            # llhttp hands us the de-chunked data; re-frame it for the backend.
            data = b"%x\r\n%b\r\n" % (len(data), data)
        upstream = self.upstream
        if upstream is not None:
            upstream.write(data)
            self.client.touch_body()
        else:
            self.pending.append(data)
            self.pending_size += len(data)
            if self.pending_size > PENDING_LIMIT:
                self.client.pause_reading()

    def on_request_end(self) -> None:
        if self.finished:
            return
        self.request_done = True
        if self.head.body is Body.CHUNKED:
            if self.upstream is not None:
                self.upstream.write(b"0\r\n\r\n")
            else:
                self.pending.append(b"0\r\n\r\n")
        if self.upstream is not None and not self.response_started:
            self.client.await_response()

    def cancel(self) -> None:
        """The client went away: drop the backend connection at once, never pool it."""
        self.cancelled = True
        if not self.finished:
            self.finished = True
            self.drop_upstream(abort=True)

    # Connecting.

    async def _connect(self, backend: Backend) -> None:
        ctx = self.client.ctx
        pool = ctx.upstream_pools[backend.index]
        try:
            async with asyncio.timeout(ctx.config.timeouts.connect):
                _, protocol = await ctx.loop.create_connection(
                    lambda: as_protocol(UpstreamConnection(backend, pool)),
                    backend.host,
                    backend.port,
                )
            conn = cast(UpstreamConnection, protocol)
        except (OSError, TimeoutError) as exc:
            if self.cancelled:
                return
            ctx.backend_failed(backend, describe(exc))
            self.tried += (backend,)
            self.start()  # nothing was sent: always safe to try the next backend
            return
        if self.cancelled or self.finished:
            conn.close()
            return
        self._attach(conn)

    def _attach(self, conn: UpstreamConnection) -> None:
        client = self.client
        head = self.head
        backend = conn.backend
        self.upstream = conn
        conn.exchange = self
        conn.uses += 1
        backend.active += 1
        data = build_request_head(
            head,
            client.peer_ip,
            b"http",
            # Only for an HTTP/1.0 request without Host: HTTP/1.1 upstream requires one.
            default_host=backend.address.encode() if head.host is None else b"",
        )
        if self.pending:
            data = b"".join([data, *self.pending])
            self.pending = []
            self.pending_size = 0
            client.resume_reading()
        conn.write(data)
        if client.writing_paused:
            conn.pause_reading()
        if self.request_done:
            client.await_response()
        else:
            client.touch_body()

    # Response side: called by the upstream connection.

    def on_response_head(self, status: int, reason: bytes, headers: Headers) -> bool:
        """Send the response head on; returns True when the response has no body."""
        client = self.client
        if 100 <= status < 200:
            if status == 101:
                self._switch_protocols(reason, headers)
                return False
            self.interim = True
            client.write(build_response_head(status, reason, headers, drop=HOP_BY_HOP, framing=b""))
            return False
        parts, length, codings = response_head_parts(status, reason, headers)
        # RFC 9112 6.3 rule 4: a response whose Transfer-Encoding does not end in chunked is
        # read until the backend closes (llhttp does so too). Codings other than the final
        # chunked (gzip...) are the body's, so they stay in the forwarded Transfer-Encoding.
        # The framing lines rota chooses for the client's hop follow the copied fields.
        head = self.head
        no_body = status == 204 or status == 304 or head.method == b"HEAD"
        if no_body:
            body = ResponseBody.NONE
            if length is not None:
                parts += (b"Content-Length: ", length, b"\r\n")
        elif codings and codings[-1] == b"chunked":
            body = ResponseBody.CHUNKED
            codings = codings[:-1]
        elif length is not None:
            body = ResponseBody.LENGTH
            parts += (b"Content-Length: ", length, b"\r\n")
        else:
            body = ResponseBody.UNTIL_CLOSE
            if self.upstream is not None:
                self.upstream.reusable = False
        if body is ResponseBody.CHUNKED or body is ResponseBody.UNTIL_CLOSE:
            if head.version == (1, 1):
                if codings:
                    parts += (b"Transfer-Encoding: ", b", ".join(codings), b", chunked\r\n")
                else:
                    parts.append(b"Transfer-Encoding: chunked\r\n")
                self.rechunk = True
            else:
                # An HTTP/1.0 client reads until close. It must not be sent Transfer-Encoding
                # (RFC 9112 6.1), so a body with another coding (rare) reaches it unlabelled.
                self.keep_client = False
        self.response_body = body
        if not self.request_done or client.closing:
            self.keep_client = False
        if not self.keep_client:
            parts.append(b"Connection: close\r\n\r\n")
        elif head.version != (1, 1):
            parts.append(b"Connection: keep-alive\r\n\r\n")
        else:
            parts.append(b"\r\n")
        client.write_parts(parts)
        self.response_started = True
        client.touch_body()
        return no_body

    def _switch_protocols(self, reason: bytes, headers: Headers) -> None:
        """A 101: the start of a WebSocket tunnel, or a backend error.

        RFC 9110 15.2.2: a server switches only to a protocol the client asked for in
        Upgrade, and must say which in its own Upgrade. rota forwards only a WebSocket
        Upgrade (h2c and others are stripped), so any other 101 is a backend error: 502.
        The 101 must also carry `Connection: upgrade`, or llhttp would read the tunnel
        bytes after it as the next response.
        """
        conn = self.upstream
        upgrade = b""
        connection: list[bytes] = []
        for name, value in headers:
            lname = name.lower()
            if lname == b"upgrade":
                upgrade = value.strip()
            elif lname == b"connection":
                connection.append(value)
        tokens = connection_options(connection) if connection else frozenset()
        if (
            conn is None
            or not self.head.websocket
            or b"upgrade" not in tokens
            or upgrade.split(b"/", 1)[0].lower() != b"websocket"
        ):
            self.on_upstream_error(conn, "unexpected 101 response")
            return
        conn.reusable = False  # never HTTP again
        self.response_started = True
        client = self.client
        client.write(
            build_response_head(
                101,
                reason,
                headers,
                drop=HOP_BY_HOP.union(tokens),
                framing=b"Connection: Upgrade\r\nUpgrade: %b\r\n" % upgrade,
            )
        )
        tunnel = Tunnel(self, client, conn)
        conn.tunnel = tunnel
        client.start_tunnel(tunnel)

    def on_response_body(self, data: bytes) -> None:
        if not data:
            return  # an empty chunk would end a re-chunked body
        client = self.client
        if self.rechunk:
            client.write(b"%x\r\n" % len(data))
            client.write(data)
            client.write(b"\r\n")
        else:
            client.write(data)
        client.touch_body()

    def on_response_end(self) -> None:
        if self.finished:
            return
        if self.rechunk:
            self.client.write(b"0\r\n\r\n")
        self.finished = True
        conn = self.upstream
        self.upstream = None
        if conn is not None:
            conn.backend.active -= 1
            if not self.request_done:
                # The backend answered before the request body ended: the rest of that
                # body would be read as a new request on this connection (RFC 9112 9.3).
                conn.reusable = False
                self.keep_client = False
            ctx = self.client.ctx
            ctx.upstream_pools[conn.backend.index].release(conn, ctx.now)
        self.client.exchange_done(self, self.keep_client)

    def on_upstream_lost(self, conn: UpstreamConnection, exc: Exception | None) -> None:
        if self.finished or conn is not self.upstream:
            return
        head = self.head
        if not self.response_started:
            safe = (
                not conn.received
                and head.body is Body.NONE
                and head.method in IDEMPOTENT
                and self.backend is not None
            )
            if safe and self.reused and not self.retried:
                # A pooled connection the backend closed while we were sending: nothing
                # came back, the request is idempotent; one retry on a fresh connection.
                self.retried = True
                self.reused = False
                self.drop_upstream(abort=True)
                self.client.ctx.loop.create_task(self._connect(conn.backend))
                return
            if not self.reused:
                # A fresh connection reset or closed before any answer: the backend is in
                # trouble (passive check; it died with our request, say). A reused one
                # may just have hit its keep-alive timer, and was retried above.
                reason = "connection reset" if exc is not None else "closed without answer"
                self.client.ctx.backend_failed(conn.backend, reason)
                if safe:
                    # Idempotent and nothing came back: the next backend may answer it.
                    self.none_left = 502
                    self.tried += (conn.backend,)
                    self.drop_upstream(abort=True)
                    self.retried = False
                    self.start()
                    return
            self.fail(502)
            return
        if self.response_body is ResponseBody.UNTIL_CLOSE and exc is None:
            self.on_response_end()
            return
        self._cut_short(abort=False)

    def on_upstream_error(self, conn: UpstreamConnection | None, reason: str) -> None:
        if self.finished:
            return
        if not self.response_started:
            self.fail(502)
        else:
            self._cut_short(abort=True)

    def on_timeout(self) -> None:
        """The client connection's deadline passed while this exchange was active."""
        if self.finished:
            return
        if not self.response_started and self.request_done:
            self.fail(504)
        else:
            self._cut_short(abort=True)

    def _cut_short(self, *, abort: bool) -> None:
        """A response already begun cannot become an error: close the client short of
        its framing, so it sees a truncated response, never a fake complete one."""
        self.finished = True
        self.drop_upstream(abort=abort)
        self.client.close()

    def fail(self, status: int) -> None:
        """Answer with rota's own error response and drop the backend connection."""
        if self.finished:
            return
        self.finished = True
        self.drop_upstream(abort=True)
        keep = self.keep_client and self.request_done and not self.client.closing
        self.client.send_error(self, status, keep)

    def drop_upstream(self, *, abort: bool) -> None:
        conn = self.upstream
        if conn is None:
            return
        self.upstream = None
        conn.exchange = None
        conn.backend.active -= 1
        if abort:
            conn.abort()
        else:
            conn.close()
