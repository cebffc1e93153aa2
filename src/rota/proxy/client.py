"""The client side of the proxy: one `ClientConnection` per accepted connection.

It parses requests (rota.http.request), queues them (pipelining: answered strictly in
order, one exchange at a time), writes responses, and owns the connection's one deadline.
Deadlines are checked by a periodic sweep (`ProxyContext.sweep`) instead of a timer per
event: re-arming a TimerHandle on every chunk costs more than the comparison in the sweep.
"""

from __future__ import annotations

import asyncio
import enum
from typing import TYPE_CHECKING, Final

from rota.config.model import hostport
from rota.http.errors import ProtocolError
from rota.http.request import RequestHead, RequestParser
from rota.outcome import End, Outcome, protocol_name, reason_for
from rota.proxy.batching import BatchedWriter
from rota.proxy.exchange import Exchange
from rota.proxy.responses import CANNED, CANNED_KEEP_ALIVE

if TYPE_CHECKING:
    from rota.proxy.context import ProxyContext
    from rota.proxy.websocket import Tunnel


class Phase(enum.Enum):
    IDLE = 0  # between requests: idle timeout, silent close
    HEAD = 1  # a request head is arriving: header timeout, 408
    ACTIVE = 2  # an exchange is in flight: its own deadlines
    LINGER = 3  # answered with an error, half-closed, discarding what the client still sends


# Lingering close (nginx's lingering_close): closing a socket with unread received bytes makes
# the kernel send RST (RFC 1122 4.2.2.13), and an RST can destroy the error answer already
# written, in flight or unread in the client's buffer (RFC 9112 9.6). So after an error rota
# half-closes, reads and discards until the client's EOF, for at most this long / this much.
LINGER_SECONDS: Final = 2.0
LINGER_BYTES: Final = 1024 * 1024


# Pipelined requests parsed ahead of the one being answered before reading pauses.
PIPELINE_DEPTH: Final = 8


def _ip_of(peer: object) -> bytes:
    """The address part of a socket address, as X-Forwarded-For carries it."""
    if isinstance(peer, tuple) and peer:
        return str(peer[0]).encode()
    return b"unknown"


class ClientConnection(BatchedWriter):
    __slots__ = (
        "_address",
        "_paused_pipeline",
        "_paused_upgrade",
        "_paused_upstream",
        "closing",
        "ctx",
        "deadline",
        "eof_seen",
        "last_request",
        "linger_left",
        "parser",
        "parsing",
        "peer",
        "peer_ip",
        "phase",
        "queue",
        "reading_paused",
        "rejected",
        "rejected_ended",
        "tunnel",
        "writing_paused",
    )

    def __init__(self, ctx: ProxyContext, peer: object = None) -> None:
        self.ctx = ctx
        self.init_writer(ctx.batch)
        self.parser = RequestParser(self, ctx.limits)
        # The peer's address as accept() returned it (rota.proxy.listener), formatted
        # only when asked for; without it, connection_made asks the transport.
        self.peer = peer
        self.peer_ip = b"unknown" if peer is None else _ip_of(peer)
        self._address = ""
        # Exchanges in request order, the one being answered first. At most PIPELINE_DEPTH:
        # a list, whose methods compile to direct calls (a deque's are looked up by name).
        self.queue: list[Exchange] = []
        self.parsing: Exchange | None = None
        self.phase = Phase.IDLE
        self.deadline = 0.0
        self.closing = False
        self.rejected: ProtocolError | None = None
        self.rejected_ended = False  # the rejected request's exchange told the observers
        self.reading_paused = False
        self.writing_paused = False
        self._paused_pipeline = False
        self._paused_upstream = False
        # While a WebSocket handshake awaits the backend's answer (rota.proxy.websocket).
        self._paused_upgrade = False
        self.eof_seen = False
        # Set by a drain: the next request is the last, answered with `Connection: close`.
        self.last_request = False
        self.tunnel: Tunnel | None = None
        self.linger_left = 0

    def __repr__(self) -> str:
        return f"<ClientConnection {self.peer_ip.decode()} {self.phase.name} q={len(self.queue)}>"

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.bind(transport)
        if self.peer is None:
            peer = transport.get_extra_info("peername")
            if peer:
                self.peer_ip = _ip_of(peer)
                self.peer = peer
        # The connection cap is the listener's (rota.proxy.listener.Listener): at the cap
        # it makes room (ProxyContext.make_room) or stops accepting, so a client past it
        # waits in the listen backlog instead of being refused.
        ctx = self.ctx
        ctx.clients[self] = None
        ctx.accepted += 1
        self.deadline = ctx.now + ctx.timeouts.idle

    def data_received(self, data: bytes) -> None:
        tunnel = self.tunnel
        if tunnel is not None:
            tunnel.from_client(data)
            return
        if self.rejected is not None or self.closing:
            # After a protocol error nothing more is parsed.
            if self.phase is Phase.LINGER:
                self.linger_left -= len(data)
                if self.linger_left <= 0:
                    self.close()
            return
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        batch = self._batch
        batch.active = True
        try:
            self.parser.feed(data)
        except ProtocolError as exc:
            self.reject(exc)
            return
        finally:
            batch.flush()
        if self.parser.held is not None and not self._paused_upgrade and not self.closing:
            # A WebSocket handshake: read nothing more until the backend answers it.
            self._paused_upgrade = True
            self._update_reading()
            if not self.queue and not self.closing:
                self._resume_held()  # already answered (synchronously) and kept alive
                return
        if self.phase is Phase.IDLE and self.parser.in_head:
            self.phase = Phase.HEAD
            self.deadline = self.ctx.now + self.ctx.timeouts.header

    def eof_received(self) -> bool:
        self.eof_seen = True
        if self.tunnel is not None:
            return self.tunnel.client_eof()
        if self.phase is Phase.LINGER:
            return False  # the client read our answer and closed: close
        # Half-closed by the client: finish what is queued, then close (RFC 9112 9.6).
        parsing = self.parsing
        if parsing is not None and not parsing.request_done:
            # ... unless it left in the middle of a request body, which can never end now:
            # close both sides at once (connection_lost aborts the backend connection).
            return False
        # Every queued request is still answered; the connection closes once the queue is
        # empty (exchange_done). Nothing queued: close now.
        return bool(self.queue)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        ctx = self.ctx
        clients = ctx.clients
        if self in clients:  # two C calls; dict.pop(key, None) is a method call by name
            del clients[self]
            ctx.release()
        while self.queue:
            self.queue.pop(0).cancel()
        self.parser.close()  # no reference cycles left for the garbage collector

    def pause_writing(self) -> None:
        self.widen()
        self.writing_paused = True
        if self.queue:
            upstream = self.queue[0].upstream
            if upstream is not None:
                upstream.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.queue:
            upstream = self.queue[0].upstream
            if upstream is not None:
                upstream.resume_reading()

    # Parser events (rota.http.request.RequestSink)

    def on_request(self, head: RequestHead) -> None:
        if self.closing:
            return
        ctx = self.ctx
        # Routing: one attribute read for the usual single catch-all route (`only`).
        route = ctx.only
        if route is None:
            route = ctx.routes.match(head.method, head.target, head.host, head.fields)
        pool = ctx.route_pools[route.index] if route is not None else None
        exchange = Exchange(self, head, route, pool)
        self.parsing = exchange
        queue = self.queue
        queue.append(exchange)
        if len(queue) == 1:
            self.phase = Phase.ACTIVE
            exchange.start()
        elif len(queue) >= PIPELINE_DEPTH:
            self._paused_pipeline = True
            self._update_reading()

    def on_request_body(self, data: bytes) -> None:
        parsing = self.parsing
        if parsing is not None:
            parsing.on_request_body(data)

    def on_request_framed(self, data: bytes, body: int) -> None:
        parsing = self.parsing
        if parsing is not None:
            parsing.on_request_framed(data, body)

    def on_request_trailers(self, section: bytes) -> None:
        parsing = self.parsing
        if parsing is not None:
            parsing.trailers = section

    def on_request_end(self) -> None:
        parsing = self.parsing
        if parsing is not None:
            parsing.on_request_end()

    # For the exchange

    def touch_body(self) -> None:
        """Bytes moved mid-exchange: the body timeout starts again."""
        self.deadline = self.ctx.now + self.ctx.timeouts.body

    def touch_tunnel(self) -> None:
        """Bytes moved through a WebSocket tunnel: its silence timeout starts again."""
        self.deadline = self.ctx.now + self.ctx.timeouts.tunnel

    def await_response(self, timeout: float) -> None:
        """The request is all sent: the backend has `timeout` (its pool's
        `timeouts.response`) to answer."""
        self.deadline = self.ctx.now + timeout

    def pause_reading(self) -> None:
        self._paused_upstream = True
        self._update_reading()

    def resume_reading(self) -> None:
        self._paused_upstream = False
        self._update_reading()

    def _update_reading(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        want_paused = self._paused_pipeline or self._paused_upstream or self._paused_upgrade
        if want_paused != self.reading_paused:
            self.reading_paused = want_paused
            if want_paused:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def exchange_done(self, exchange: Exchange, keep_alive: bool, linger: bool = False) -> None:
        """The front exchange is answered; start the next one or wait for one. Without
        keep-alive the connection closes, lingering after rota's own error answers."""
        queue = self.queue
        if queue and queue[0] is exchange:
            queue.pop(0)
        if self.parsing is exchange:
            self.parsing = None
        if not keep_alive:
            if linger:
                self.linger_close()
            else:
                self.close()
            return
        if queue:
            self.phase = Phase.ACTIVE
            if self._paused_pipeline and len(queue) < PIPELINE_DEPTH:
                self._paused_pipeline = False
                self._update_reading()
            queue[0].start(True)
            return
        if self.rejected is not None:
            self._refuse(self.rejected.status)
            return
        if self.closing or self.eof_seen:
            self.close()
            return
        ctx = self.ctx
        if self.parser.in_head:
            self.phase = Phase.HEAD
            self.deadline = ctx.now + ctx.timeouts.header
        else:
            self.phase = Phase.IDLE
            self.deadline = ctx.now + ctx.timeouts.idle
        if ctx.full:
            # The listener stopped accepting at the cap with nothing to close: this
            # connection can now make room for a client waiting in the backlog.
            ctx.room_made()
        if self._paused_pipeline:
            self._paused_pipeline = False
            self._update_reading()
        if self._paused_upgrade:
            # The WebSocket handshake got an answer other than 101: the bytes held after
            # it are HTTP again.
            self._resume_held()

    def _release_held(self) -> bytes | None:
        """The bytes held after a WebSocket handshake; reading resumes."""
        held = self.parser.release_held()
        self._paused_upgrade = False
        self._update_reading()
        return held

    def _resume_held(self) -> None:
        held = self._release_held()
        if held:
            self._feed(held)

    def start_tunnel(self, tunnel: Tunnel) -> None:
        """The backend answered the WebSocket handshake with 101 (rota.proxy.websocket)."""
        self.tunnel = tunnel
        held = self._release_held()
        if held:
            tunnel.upstream.write(held)
        self.touch_tunnel()
        if self.eof_seen:
            # The client half-closed while waiting for the 101: pass it on, once the
            # response parser that called us has finished with the backend connection.
            self.ctx.loop.call_soon(tunnel.client_eof)

    def send_error(self, exchange: Exchange, status: int, keep_alive: bool) -> None:
        self.write(CANNED_KEEP_ALIVE[status] if keep_alive else CANNED[status])
        self.exchange_done(exchange, keep_alive, linger=True)

    def reject(self, exc: ProtocolError) -> None:
        """A malformed request: answer earlier requests first, then the error, then close."""
        self.rejected = exc
        self._paused_pipeline = True
        self._update_reading()
        queue = self.queue
        broken = self.parsing
        if broken is not None and not broken.request_done and broken in queue:
            # The error is inside this request's body: it can never complete.
            front = queue[0] is broken
            queue.remove(broken)
            if front and broken.response_started:
                broken.cancel()
                self.close()  # its response is half sent: only closing is left
                return
            broken.refuse(exc.status)  # it ends with the status its answer will have
            self.rejected_ended = True
        if not queue:
            self._refuse(exc.status)
        # otherwise exchange_done sends it when the queue drains

    def _refuse(self, status: int) -> None:
        """Answer with rota's own error and close (lingering)."""
        ctx = self.ctx
        if not self.rejected_ended and ctx.observers:  # else its exchange ended with it
            self._report(status)
        self.write(CANNED[status])
        self.linger_close()

    def address(self) -> str:
        """The client's "address:port", formatted once per connection (for observers)."""
        address = self._address
        if not address:
            peer = self.peer
            if isinstance(peer, tuple) and len(peer) >= 2:
                address = hostport(str(peer[0]), int(peer[1]))
            else:
                address = self.peer_ip.decode("ascii", "replace")
            self._address = address
        return address

    def _report(self, status: int) -> None:
        """Tell the observers of an answer rota made without an exchange: an error in a
        request head (400, 414, 431...), a head that never completed (408). Method,
        target and protocol are what had arrived of them."""
        ctx = self.ctx
        now = ctx.clock()
        # A head that spanned reads began about when its header deadline was set (at the
        # sweep clock's resolution); one refused in the read that began it, now.
        began = self.deadline - ctx.timeouts.header if self.phase is Phase.HEAD else now
        outcome = Outcome(ctx.name, min(began, now))
        outcome.finished = now
        outcome.status = status
        outcome.end = End.REFUSED
        outcome.client = self.address()
        method, target, version = self.parser.request_line()
        outcome.method = method.decode("ascii", "replace")
        outcome.target = target.decode("utf-8", "backslashreplace")
        outcome.protocol = protocol_name(version) if version is not None else ""
        outcome.reason = reason_for(End.REFUSED, status)
        for observer in ctx.observers:
            observer(outcome)

    def linger_close(self) -> None:
        """Close after an error answer without an RST destroying it (LINGER_SECONDS)."""
        self.closing = True
        self.flush()
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.eof_seen or not transport.can_write_eof():
            transport.close()  # nothing more will come (or cannot half-close)
            return
        transport.write_eof()
        self.phase = Phase.LINGER
        self.deadline = self.ctx.now + LINGER_SECONDS
        self.linger_left = LINGER_BYTES
        self._paused_pipeline = self._paused_upstream = self._paused_upgrade = False
        self._update_reading()

    def close(self) -> None:
        self.closing = True
        self.flush()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()

    def evictable(self) -> bool:
        """Nothing in flight: idle between requests, or a request head still arriving."""
        return (
            not self.queue
            and not self.closing
            and (self.phase is Phase.IDLE or self.phase is Phase.HEAD)
        )

    def evict(self) -> None:
        """Closed to make room for a new client (ProxyContext.make_room): out of the count
        at once; a head that was arriving is cut with a reset, unanswered."""
        ctx = self.ctx
        del ctx.clients[self]  # make_room found it there
        ctx.release()
        self.closing = True
        transport = self.transport
        if transport is not None:
            if self.phase is Phase.HEAD:
                transport.abort()
            else:
                transport.close()

    def expire(self, now: float) -> None:
        """Called by the sweep when `deadline` has passed."""
        phase = self.phase
        if phase is Phase.IDLE:
            self.close()
        elif phase is Phase.HEAD:
            self._refuse(408)
        elif phase is Phase.LINGER:
            self.close()
        elif self.queue:
            self.queue[0].on_timeout()
        else:
            self.close()
