"""One request/response cycle: route, pick a backend, get a connection, stream both ways.

The exchange is where failures become statuses: nothing answered -> 502, no backend -> 503,
too slow -> 504 (the deadlines live on the client connection; see `ClientConnection.expire`).
It never fakes a complete response: a backend that dies mid-body makes rota close the
client connection with the response short of its framing.

Its state is one `Step`, changed only here, and every exchange ends in one place,
`_finish`: it releases the backend (its in-flight count and the policy's feedback), stamps
the end time from the loop's clock and hands the exchange, an `Outcome`, to the listener's
observers. The request side has two states of its own (`request_done`).

    QUEUED -> LOCAL ----------------------------------> DONE  (404, redirect, respond)
    QUEUED -> WAITING -> STREAMING -------------------> DONE
                  \\-> (retry: WAITING again)     \\-> TUNNEL -> DONE  (after a 101)
"""

from __future__ import annotations

import asyncio
import enum
import errno
import ssl
from typing import TYPE_CHECKING, Final, cast

from rota.http.forward import build_request_head
from rota.http.headers import (
    HOP_BY_HOP,
    Headers,
    build_response_head,
    connection_options,
    cookie_value,
    response_head_parts,
)
from rota.http.request import BYPASS_MIN, IDEMPOTENT, Body, RequestHead
from rota.http.routing import Route, rewrite_target
from rota.http.trailers import response_trailer_section
from rota.outcome import TIMEOUT, End, Outcome, protocol_name, reason_for
from rota.pool import Backend, Pool
from rota.proxy.batching import as_protocol
from rota.proxy.responses import CANNED, CANNED_KEEP_ALIVE
from rota.proxy.upstream import HEAD_PENDING, UpstreamConnection
from rota.proxy.websocket import Tunnel
from rota.tls.client import describe as tls_reason

if TYPE_CHECKING:
    from rota.proxy.client import ClientConnection

# Request body bytes held while no backend connection is ready; past this the client's
# reading pauses (back-pressure instead of buffering a whole upload).
PENDING_LIMIT: Final = 256 * 1024


class Step(enum.Enum):
    QUEUED = 0  # parsed, behind another exchange or not started yet
    LOCAL = 1  # rota answers itself once the request has arrived whole
    WAITING = 2  # a backend is picked: connecting, sending, awaiting the response head
    STREAMING = 3  # the response head went to the client; the body follows
    TUNNEL = 4  # a 101 made it a WebSocket tunnel (rota.proxy.websocket)
    DONE = 5
    HELD = 6  # every server is at its max_requests: waiting in the pool's queue
    REFUSED = 7  # no server can take it: rota answers none_left once the head has ended


class ResponseBody(enum.Enum):
    NONE = 0
    LENGTH = 1
    CHUNKED = 2
    UNTIL_CLOSE = 3


def describe(exc: BaseException) -> str:
    """A short reason for a failed backend connection, for logs and passive checks."""
    if isinstance(exc, ssl.SSLError):
        return tls_reason(exc)
    if isinstance(exc, TimeoutError):
        return "connect timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, OSError) and exc.errno is not None:
        return errno.errorcode.get(exc.errno, str(exc.errno)).lower()
    return type(exc).__name__


class Exchange(Outcome):
    __slots__ = (
        "attempt",
        "downstream",
        "head",
        "interim",
        "keep_client",
        "none_left",
        "pending",
        "pending_size",
        "rechunk",
        "request_done",
        "response_body",
        "retried",
        "reused",
        "route",
        "sent",
        "set_cookie",
        "step",
        "trailers",
        "tried",
        "upstream",
    )

    def __init__(
        self, client: ClientConnection, head: RequestHead, route: Route | None, pool: Pool | None
    ) -> None:
        ctx = client.ctx
        # Outcome's fields, set here rather than through its __init__: one call fewer on
        # every request.
        self.listener = ctx.name
        self.started = started = ctx.clock()
        self.finished = 0.0
        self.end = End.OPEN
        self.backend = None
        self.status = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.connect_time = -1.0
        self.response_time = -1.0
        self.retries = 0
        # Filled in by _describe at the end, when the listener has observers.
        self.client = self.method = self.target = self.protocol = self.reason = ""
        self.fields = ()
        self.downstream = client
        self.head = head
        self.route = route
        self.pool = pool  # None: rota answers itself (no route, redirect, respond)
        self.step = Step.QUEUED
        self.attempt: Backend | None = None  # the backend counting this exchange in flight
        self.upstream: UpstreamConnection | None = None
        self.tried: tuple[Backend, ...] = ()
        self.pending: list[bytes] = []
        self.pending_size = 0
        self.request_done = False
        self.response_body = ResponseBody.NONE
        self.rechunk = False
        self.trailers = b""  # a chunked request's trailer fields, forwarded at its end
        self.interim = False
        self.reused = False
        self.retried = False
        self.keep_client = head.keep_alive
        self.set_cookie = b""  # a sticky pool's Set-Cookie line, when the client needs one
        # The status when no backend is left to try: 503, or 502 once a backend took the
        # request and closed without an answer (a bad gateway, not an unavailable one).
        self.none_left = 503
        # When the request head went to the backend (for response_time): the start, until
        # a connection is attached later than that (see _attach).
        self.sent = started

    def __repr__(self) -> str:
        where = self.backend.name if self.backend else "-"
        return f"<Exchange {self.head!r} {self.step.name} -> {where}>"

    @property
    def response_started(self) -> bool:
        step = self.step
        return step is Step.STREAMING or step is Step.TUNNEL

    # Request side: called by the client connection.

    def start(self, late: bool = False) -> None:
        """This exchange is at the front of its connection: answer it or send it on.
        `late`: it waited behind others (pipelined), so its start is not now."""
        if late:
            self.sent = self.downstream.ctx.clock()
        if self.step is Step.QUEUED:
            if self.pool is None:
                self.step = Step.LOCAL
                if self.request_done:
                    self._answer_locally()
                else:
                    self.downstream.touch_body()  # the body is read and dropped
                return
            self.step = Step.WAITING
        self._pick()

    def _pick(self) -> None:
        """Pick a backend and send the request there (now if a pooled connection is idle)."""
        pool = self.pool
        if pool is None:
            return
        if pool.plain:
            backend = pool.policy.pick(self.tried, self.head, self.downstream.peer_ip)
        else:
            backend = self._pick_shaped(pool)
        if backend is None:
            if pool.queue_timeout > 0 and pool.anyone_full(self.tried):
                # HAProxy's maxconn + queue: wait for a server to finish one, for a while.
                self.step = Step.HELD
                pool.waiting.append(self)
                self.downstream.await_response(pool.queue_timeout)
                return
            head = self.head
            if not self.request_done and head.body is Body.NONE and not head.websocket:
                # The end of a bodyless request follows at once: answer then, so the
                # connection can stay (a 503 mid-body must close it; RFC 9112 9.3). Not
                # a WebSocket handshake: what follows it is no request.
                self.step = Step.REFUSED
                return
            self.fail(self.none_left)
            return
        if self.backend is not None:
            self.retries += 1
        self.backend = self.attempt = backend
        backend.active += 1
        pool.policy.started(backend)
        idle = backend.idle
        conn = idle.acquire() if idle is not None else None
        if conn is not None:
            self.reused = True
            self.connect_time = 0.0
            self._attach(conn, self.sent)
        else:
            self.downstream.ctx.loop.create_task(self._connect(backend))

    def _pick_shaped(self, pool: Pool) -> Backend | None:
        """The pick of a pool with sticky sessions or per-server limits."""
        backend: Backend | None = None
        if pool.sticky is not None:
            backend = self._sticky(pool)
        if backend is None:
            backend = pool.pick(self.tried, self.head, self.downstream.peer_ip)
            if pool.sticky is not None and backend is not None:
                self.set_cookie = backend.sticky_line
        return backend

    def _sticky(self, pool: Pool) -> Backend | None:
        """The server the request's sticky cookie names, if usable and not tried."""
        value = cookie_value(self.head.fields, pool.sticky or b"")
        if value is None:
            return None
        backend = pool.sticky_pick(value)
        if backend is None or backend in self.tried:
            return None
        return backend

    def resume(self) -> None:
        """A server of the pool has room again (`Pool.wake`): try once more."""
        if self.step is Step.HELD:
            self.step = Step.WAITING
            self.sent = self.downstream.ctx.clock()
            self._pick()

    def _leave_queue(self) -> None:
        pool = self.pool
        if pool is not None and self in pool.waiting:
            pool.waiting.remove(self)

    def on_request_body(self, data: bytes) -> None:
        step = self.step
        if step is Step.DONE:
            return
        self.bytes_in += len(data)
        if step is Step.LOCAL or (step is Step.QUEUED and self.pool is None):
            self.downstream.touch_body()
            return
        if self.head.body is Body.CHUNKED:
            # llhttp hands us the de-chunked data; re-frame it for the backend.
            data = b"%x\r\n%b\r\n" % (len(data), data)
        self._send_body(data)

    def on_request_framed(self, data: bytes, body: int) -> None:
        """Chunks of a chunked body passed through in the client's framing (`body` data
        bytes in them): sent on as they are (rota.http.request.RequestParser._pass_on)."""
        step = self.step
        if step is Step.DONE:
            return
        self.bytes_in += body
        if step is Step.LOCAL or (step is Step.QUEUED and self.pool is None):
            self.downstream.touch_body()
            return
        self._send_body(data)

    def _send_body(self, data: bytes) -> None:
        upstream = self.upstream
        if upstream is not None:
            upstream.write(data)
            self.downstream.touch_body()
        else:
            self.pending.append(data)
            self.pending_size += len(data)
            if self.pending_size > PENDING_LIMIT:
                self.downstream.pause_reading()

    def on_request_end(self) -> None:
        step = self.step
        if step is Step.DONE:
            return
        self.request_done = True
        if step is Step.LOCAL:
            self._answer_locally()
            return
        if step is Step.REFUSED:
            self.fail(self.none_left)
            return
        if self.pool is None:
            return  # queued; answered when it reaches the front
        if self.head.body is Body.CHUNKED:
            trailers = self.trailers
            # The last chunk, and the trailer fields (RFC 9112 7.1.2) if the client sent any.
            last = b"0\r\n%b\r\n" % trailers if trailers else b"0\r\n\r\n"
            if self.upstream is not None:
                self.upstream.write(last)
            else:
                self.pending.append(last)
        if self.upstream is not None and step is Step.WAITING:
            self.downstream.await_response(self.pool.timeouts.response)

    def cancel(self) -> None:
        """The client went away: drop the backend connection at once, never pool it."""
        self._abandon(End.CANCELLED)

    def _abandon(self, end: End, status: int = 0) -> None:
        """End here, whatever step it is in: out of the queue, the backend connection
        dropped (never pooled)."""
        step = self.step
        if step is not Step.DONE:
            if step is Step.HELD:
                self._leave_queue()
            self.drop_upstream(abort=True)
            self._finish(end, status)

    # Connecting.

    async def _connect(self, backend: Backend) -> None:
        ctx = self.downstream.ctx
        idle = backend.idle
        pool = self.pool
        if idle is None or pool is None:
            return
        tls = pool.tls
        begun = ctx.clock()
        try:
            # The connect timeout covers the TLS handshake too.
            async with asyncio.timeout(pool.timeouts.connect):
                _, protocol = await ctx.loop.create_connection(
                    lambda: as_protocol(UpstreamConnection(backend, idle)),
                    backend.host,
                    backend.port,
                    ssl=tls,
                    server_hostname=(pool.tls_name or backend.host) if tls is not None else None,
                )
            conn = cast(UpstreamConnection, protocol)
        except (OSError, TimeoutError) as exc:
            if self.step is Step.DONE:
                return
            if isinstance(exc, ssl.SSLError):
                # A backend that answers with a certificate that does not verify is a bad
                # gateway, not an unavailable one: 502 if no other server takes it.
                self.none_left = 502
            ctx.backend_failed(backend, describe(exc))
            self._attempt_failed(backend)
            self.sent = ctx.clock()  # a pooled connection of the next one goes out now
            self._pick()  # nothing was sent: always safe to try the next backend
            return
        if self.step is Step.DONE:
            conn.close()
            return
        now = ctx.clock()
        self.connect_time = now - begun
        self._attach(conn, now)

    def _attempt_failed(self, backend: Backend) -> None:
        """This backend did not take the request; another may (`tried` keeps it out)."""
        self.tried += (backend,)
        self.connect_time = -1.0  # until a connection to another one is used
        self._release_attempt()

    def _release_attempt(self) -> None:
        backend = self.attempt
        if backend is not None:
            self.attempt = None
            backend.pool.ended(backend, self)

    def _attach(self, conn: UpstreamConnection, sent: float) -> None:
        """Send the request head (and any body bytes held) on `conn`, at `sent`: the time
        just taken after a connect, or the exchange's own start when a pooled connection
        is attached as it arrives (no clock read per request for that)."""
        self.sent = sent
        client = self.downstream
        head = self.head
        backend = conn.backend
        self.upstream = conn
        conn.exchange = self
        conn.uses += 1
        route = self.route
        edits = None
        target = None
        if route is not None:
            edits = route.request_edits
            prefix = route.strip_prefix
            if prefix is not None:
                target = rewrite_target(head.target, prefix)
        data = build_request_head(
            head,
            client.peer_ip,
            client.ctx.proto,
            # Only for an HTTP/1.0 request without Host: HTTP/1.1 upstream requires one.
            backend.address.encode() if head.host is None else b"",
            False,
            edits,
            target,
            client.ctx.listener.via,
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
            client.await_response(backend.pool.timeouts.response)
        else:
            client.touch_body()

    # Response side: called by the upstream connection.

    def on_response_head(self, status: int, reason: bytes, headers: Headers) -> bool:
        """Send the response head on; returns True when the response has no body."""
        client = self.downstream
        if 100 <= status < 200:
            if status == 101:
                self.response_time = client.ctx.clock() - self.sent
                self._switch_protocols(reason, headers)
                return False
            self.interim = True
            if self.head.version == (1, 1):
                # RFC 9110 15.2: never a 1xx to an HTTP/1.0 client; the final one follows.
                client.write(
                    build_response_head(status, reason, headers, drop=HOP_BY_HOP, framing=b"")
                )
            return False
        # Stamped when the read that brought the head is done with (stamp_head), or by
        # _finish if the response ends in that read: one clock read serves both.
        self.response_time = HEAD_PENDING
        route = self.route
        edits = route.response_edits if route is not None else None
        parts, length, codings = response_head_parts(status, reason, headers, edits)
        if self.set_cookie:
            parts.append(self.set_cookie)
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
            if len(length) > 4 and length.isdigit() and self.upstream is not None:
                size = int(length)
                if size >= BYPASS_MIN:
                    self.upstream.read_past(size)
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
        if (
            not self.request_done
            or client.closing
            or (client.eof_seen and len(client.queue) < 2)
            or client.last_request
        ):
            # Also the last answer to a client that half-closed (nothing can follow it) or
            # on a connection being drained.
            self.keep_client = False
        if not self.keep_client:
            parts.append(b"Connection: close\r\n\r\n")
        elif head.version != (1, 1):
            parts.append(b"Connection: keep-alive\r\n\r\n")
        else:
            parts.append(b"\r\n")
        client.write_parts(parts)
        self.status = status
        self.step = Step.STREAMING
        client.touch_body()
        return no_body

    def stamp_head(self) -> None:
        """The read that brought the response head is over and the response goes on:
        its time is now (`UpstreamConnection.data_received`)."""
        self.response_time = self.downstream.ctx.clock() - self.sent

    def on_interim_end(self) -> bool:
        """The upstream parser finished a message: True if it was a 1xx (the final
        response follows), False if it was the final one."""
        if self.interim:
            self.interim = False
            return True
        return False

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
        self.status = 101
        self.step = Step.TUNNEL
        client = self.downstream
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
        client = self.downstream
        self.bytes_out += len(data)
        if self.rechunk:
            client.write(b"%x\r\n" % len(data))
            client.write(data)
            client.write(b"\r\n")
        else:
            client.write(data)
        client.touch_body()

    def on_response_trailers(self, fields: Headers) -> None:
        """The trailer fields of a chunked response, just before its end: forwarded to an
        HTTP/1.1 client with the last chunk (none for an HTTP/1.0 one, which has no
        chunked framing to carry them)."""
        if self.step is not Step.STREAMING or not self.rechunk:
            return
        section = response_trailer_section(fields, self.downstream.ctx.limits)
        if section:
            self.rechunk = False  # the last chunk goes now, not in on_response_end
            self.downstream.write(b"0\r\n%b\r\n" % section)

    def on_response_end(self) -> None:
        if self.step is Step.DONE:
            return
        if self.rechunk:
            self.downstream.write(b"0\r\n\r\n")
        conn = self.upstream
        self.upstream = None
        if conn is not None:
            if not self.request_done:
                # The backend answered before the request body ended: the rest of that
                # body would be read as a new request on this connection (RFC 9112 9.3).
                conn.reusable = False
                self.keep_client = False
            elif self.head.websocket:
                # An Upgrade the backend did not switch to: it may yet send more (a second
                # answer, the new protocol) after this response, and a pooled connection
                # would hand those bytes to the next request. Never pooled.
                conn.reusable = False
            conn.pool.release(conn, self.downstream.ctx.now)
        self._finish(End.COMPLETE)
        self.downstream.exchange_done(self, self.keep_client)

    def tunnel_closed(self) -> None:
        """Both sides of the WebSocket tunnel ended (rota.proxy.websocket)."""
        if self.step is Step.DONE:
            return
        conn = self.upstream
        if conn is not None:
            conn.tunnel = None
        self.drop_upstream(abort=False)
        self._finish(End.TUNNEL)
        self.downstream.exchange_done(self, False)

    def on_upstream_lost(self, conn: UpstreamConnection, exc: Exception | None) -> None:
        if self.step is Step.DONE or conn is not self.upstream:
            return
        head = self.head
        if self.step is Step.WAITING:
            safe = not conn.received and head.body is Body.NONE and head.method in IDEMPOTENT
            if safe and self.reused and not self.retried:
                # A pooled connection the backend closed while we were sending: nothing
                # came back, the request is idempotent; one retry on a fresh connection.
                self.retried = True
                self.reused = False
                self.retries += 1
                self._detach(abort=True)
                self.downstream.ctx.loop.create_task(self._connect(conn.backend))
                return
            if not self.reused:
                # A fresh connection reset or closed before any answer: the backend is in
                # trouble (passive check; it died with our request, say). A reused one
                # may just have hit its keep-alive timer, and was retried above.
                reason = "connection reset" if exc is not None else "closed without answer"
                self.downstream.ctx.backend_failed(conn.backend, reason)
                if safe:
                    # Idempotent and nothing came back: the next backend may answer it.
                    self.none_left = 502
                    self._detach(abort=True)
                    self._attempt_failed(conn.backend)
                    self.retried = False
                    self.sent = self.downstream.ctx.clock()
                    self._pick()
                    return
            self.fail(502)
            return
        if self.response_body is ResponseBody.UNTIL_CLOSE and exc is None:
            self.on_response_end()
            return
        self._cut_short(abort=False)

    def on_upstream_error(self, conn: UpstreamConnection | None, reason: str) -> None:
        step = self.step
        if step is Step.DONE:
            return
        if step is Step.WAITING:
            self.fail(502)
        else:
            self._cut_short(abort=True)

    def on_timeout(self) -> None:
        """The client connection's deadline passed while this exchange was active."""
        step = self.step
        if step is Step.DONE:
            return
        if step is Step.HELD:
            self._leave_queue()
            self.fail(503, TIMEOUT)  # no server had room within the pool's queue_timeout
        elif step is Step.WAITING and self.request_done:
            self.fail(504)
        elif step is Step.LOCAL:
            self.fail(408)  # the body of a request rota answers itself stopped coming
        else:
            self._cut_short(abort=True, why=TIMEOUT)

    def _cut_short(self, *, abort: bool, why: str = "") -> None:
        """A response already begun cannot become an error: close the client short of
        its framing, so it sees a truncated response, never a fake complete one."""
        self.drop_upstream(abort=abort)
        self._finish(End.CUT_SHORT, 0, why)
        self.downstream.close()

    def fail(self, status: int, why: str = "") -> None:
        """Answer with rota's own error response and drop the backend connection. `why`
        names the end where the status does not (`rota.outcome.reason_for`)."""
        if self.step is Step.DONE:
            return
        self.drop_upstream(abort=True)
        client = self.downstream
        keep = (
            self.keep_client and self.request_done and not (client.closing or client.last_request)
        )
        self._finish(End.LOCAL, status, why)
        client.send_error(self, status, keep)

    def refuse(self, status: int) -> None:
        """The request turned out malformed mid-body (a 400, 413...): it ends here, with
        that status; the client connection sends the answer once earlier ones are out."""
        self._abandon(End.LOCAL, status)

    def _answer_locally(self) -> None:
        """No route (404), or a route that answers itself (redirect, respond)."""
        client = self.downstream
        keep = self.keep_client and not (client.closing or client.last_request)
        route = self.route
        answer = route.answer(keep, self.head.method == b"HEAD") if route is not None else None
        if route is None or answer is None:
            self._finish(End.LOCAL, 404)
            client.write(CANNED_KEEP_ALIVE[404] if keep else CANNED[404])
        else:
            self._finish(End.LOCAL, route.status)
            client.write(answer)
        client.exchange_done(self, keep)

    def drop_upstream(self, *, abort: bool) -> None:
        """Leave the backend connection, never to pool it; the attempt ends with it."""
        self._detach(abort=abort)
        self._release_attempt()

    def _detach(self, *, abort: bool) -> None:
        conn = self.upstream
        if conn is None:
            return
        self.upstream = None
        conn.exchange = None
        if abort:
            conn.abort()
        else:
            conn.close()

    def _finish(self, end: End, status: int = 0, why: str = "") -> None:
        """Every exchange ends here, once: the attempt is released, the end is stamped and
        the listener's observers hear of it."""
        self.step = Step.DONE
        self.end = end
        if status:
            self.status = status
        ctx = self.downstream.ctx
        self.finished = finished = ctx.clock()
        if self.response_time == HEAD_PENDING:
            self.response_time = finished - self.sent  # the head came in this very read
        self._release_attempt()
        observers = ctx.observers
        if observers:
            if ctx.describe:
                self._describe(why)
            for observer in observers:
                observer(self)

    def _describe(self, why: str) -> None:
        """The facts only observers read, formatted once they are there to read them."""
        head = self.head
        self.client = self.downstream.address()
        self.method = head.method.decode("ascii", "replace")  # llhttp: a token
        self.target = head.target.decode("utf-8", "backslashreplace")
        self.protocol = protocol_name(head.version)
        self.fields = head.fields
        self.reason = why or reason_for(self.end, self.status)
