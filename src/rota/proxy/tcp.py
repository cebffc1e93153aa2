"""TCP mode: relay bytes both ways between a client and a backend chosen per connection.

One `Tunnel` per client connection joins two `asyncio.Protocol`s, the client side and the
backend side. Everything on the data path is a callback; the only task per connection is
the short set-up (read an optional PROXY header, connect to a backend with retries), and
it ends once the relay runs.

Rules, each one line of code below:
- Back-pressure: when one side's write buffer passes its high-water mark
  (`pause_writing`), stop reading from the other side until it drains (`resume_writing`).
  Memory per connection is bounded by the two write buffers, whatever the speeds.
- Half-close: EOF from one side becomes `write_eof` on the other; the opposite direction
  stays open (`eof_received` returns True). Both sockets close when both directions ended.
- Reset: a side that dies with an error (RST, EPIPE, ...) resets the other one at once
  (SO_LINGER 0, then abort): the peer learns promptly that its stream was cut short,
  rather than mistaking a truncated stream for a complete one.
- Idle: no byte in either direction for `idle_timeout` aborts both sides. One periodic
  sweep checks every tunnel; the data path only sets a flag per chunk (no timer per chunk,
  no clock read per chunk).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from rota import proxy_protocol
from rota.config.model import Config, ListenerSpec, hostport
from rota.outcome import CLIENT_CLOSED, COMPLETED, REFUSED, SERVER_CLOSED, TIMEOUT, End, Outcome
from rota.pool import Backend, Pool
from rota.proxy.listener import DEFAULT_BACKLOG
from rota.tls import clienthello
from rota.tls.client import describe as tls_reason
from rota.tls.failures import Refused

if TYPE_CHECKING:
    from rota.proxy.tcp_server import TcpProxy

log = logging.getLogger("rota.tcp")

_LINGER_RESET = struct.pack("ii", 1, 0)


@dataclass(frozen=True, slots=True)
class TcpSettings:
    """TCP-mode knobs; every one finite by default (docs/tcp-mode.md)."""

    connect_timeout: float = 3.0  # per backend tried; then the next backend
    idle_timeout: float = 60.0  # no byte either way: both sides closed
    max_connections: int = 10_000  # concurrent clients; beyond it, clients wait in the backlog
    send_proxy: int | None = None  # PROXY protocol version sent to backends: 1, 2 or None
    accept_proxy: bool = False  # expect a PROXY header (v1 or v2) from every client
    proxy_header_timeout: float = 10.0  # for that header to arrive whole
    high_water: int = 256 * 1024  # write buffer above which the other side stops reading
    backlog: int = DEFAULT_BACKLOG

    @classmethod
    def from_listener(cls, listener: ListenerSpec, connect_timeout: float) -> TcpSettings:
        """A TCP listener reads `timeouts.idle` (here: no byte either way),
        `timeouts.header` (for an accepted PROXY header), `limits.max_connections`,
        `send_proxy` and `accept_proxy`; its pool gives `timeouts.connect`."""
        return cls(
            connect_timeout=connect_timeout,
            idle_timeout=listener.timeouts.idle,
            max_connections=listener.limits.max_connections,
            send_proxy=listener.send_proxy,
            accept_proxy=listener.accept_proxy,
            proxy_header_timeout=listener.timeouts.header,
        )

    @classmethod
    def from_config(cls, config: Config) -> TcpSettings:
        """The settings of the config's first listener (the seed's one listener)."""
        listener = config.listeners[0]
        pool = config.pool(listener.pool) if listener.pool is not None else None
        connect = pool.timeouts.connect if pool is not None else config.timeouts.connect
        return cls.from_listener(listener, connect)


def _reset(transport: asyncio.Transport) -> None:
    """Close with an RST rather than a FIN: tells the peer the stream was cut short."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()


class _Side(asyncio.Protocol):
    """One socket of a tunnel. `peer` is the other socket's side and `out` its transport,
    set before this side can receive anything (see `Tunnel`)."""

    __slots__ = ("active", "full", "open", "out", "peer", "read_done", "transport", "tunnel")

    transport: asyncio.Transport  # set by connection_made; `open` says whether it is live

    def __init__(self, tunnel: Tunnel) -> None:
        self.tunnel = tunnel
        self.out: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.active = False  # a byte arrived since the last idle sweep
        self.read_done = False  # EOF seen from this socket
        self.full = False  # my write buffer is over its high-water mark (pause_writing)
        self.open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.open = True
        high = self.tunnel.proxy.settings.high_water
        self.transport.set_write_buffer_limits(high=high, low=high // 4)

    def data_received(self, data: bytes) -> None:
        self.active = True
        self.tunnel.outcome.bytes_out += len(data)  # only the backend's side is a plain _Side
        # `out` is set before this side is connected (backend) or resumed (client).
        self.out.write(data)  # type: ignore[union-attr]

    # My write buffer is over the mark: stop reading from the other side. The flag keeps a
    # pause that arrives before the sides are joined (a backend that speaks first, a
    # client's early bytes written at the join): `Tunnel._join` applies it.
    def pause_writing(self) -> None:
        self.full = True
        peer = self.peer
        if peer is not None and peer.open and not peer.read_done:
            peer.transport.pause_reading()

    def resume_writing(self) -> None:
        self.full = False
        peer = self.peer
        if peer is not None and peer.open and not peer.read_done:
            peer.transport.resume_reading()

    def eof_received(self) -> bool:
        if self.read_done:  # a transport resumed after EOF reports it again
            return True
        self.read_done = True
        self.active = True
        peer = self.peer
        if peer is not None and peer.open:
            if peer.transport.can_write_eof():
                peer.transport.write_eof()
            if peer.read_done:
                # Both directions have ended: close both (close() flushes what is queued).
                self.transport.close()
                peer.transport.close()
        return True  # keep the other direction open

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        tunnel = self.tunnel
        if exc is not None and not tunnel.why:
            # The first side to die with an error is why the connection ended.
            tunnel.why = CLIENT_CLOSED if self is tunnel.client else SERVER_CLOSED
        peer = self.peer
        if peer is not None and peer.open:
            if exc is None:
                peer.transport.close()
            else:
                _reset(peer.transport)
        self.tunnel.side_lost(self)


class _ClientSide(_Side):
    """The client's socket: before the backend is connected it holds what arrives (and
    reads a PROXY header, or the ClientHello of SNI passthrough, out of it)."""

    __slots__ = ("header", "header_waiter", "pending", "server_name")

    def __init__(self, tunnel: Tunnel) -> None:
        super().__init__(tunnel)
        self.pending = bytearray()
        self.header: proxy_protocol.ProxyHeader | None = None
        self.header_waiter: asyncio.Future[None] | None = None
        self.server_name: str | None = None

    def data_received(self, data: bytes) -> None:
        self.active = True
        self.tunnel.outcome.bytes_in += len(data)
        out = self.out
        if out is not None:
            out.write(data)
            return
        self.pending += data
        waiter = self.header_waiter
        if waiter is None or waiter.done():
            # Nothing more to read until a backend is connected: leave it in the socket
            # buffer. Not in connection_made: neither uvloop nor asyncio (3.11) honours a
            # pause made there (both start reading after it, and asyncio's transport then
            # believes it is paused), so a fast client filled `pending` with everything it
            # sent while rota connected.
            self.transport.pause_reading()
            return
        if self.tunnel.proxy.sni is not None:
            self._hello(waiter)
            return
        try:
            result = proxy_protocol.parse_header(self.pending)
        except proxy_protocol.ProxyProtocolError as exc:
            waiter.set_exception(exc)
            return
        if result is not None:
            self.header, used = result
            del self.pending[:used]
            self.transport.pause_reading()
            waiter.set_result(None)

    def _hello(self, waiter: asyncio.Future[None]) -> None:
        """SNI passthrough: wait for the whole ClientHello, then for the backend."""
        verdict, name = clienthello.server_name(self.pending)
        if verdict is clienthello.Verdict.MORE:
            return
        self.transport.pause_reading()
        if verdict is clienthello.Verdict.NAME:
            self.server_name = name
            waiter.set_result(None)
        else:
            waiter.set_exception(Refused(verdict.value))

    def eof_received(self) -> bool:
        if self.peer is None:
            self.read_done = True  # passed on to the backend once it is connected
            waiter = self.header_waiter
            if waiter is not None and not waiter.done():
                waiter.set_exception(ConnectionResetError("EOF before the PROXY header"))
            return True
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        waiter = self.header_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("client closed"))
        super().connection_lost(exc)


class Tunnel:
    """One client connection and, once connected, its backend connection. Its `outcome`
    ends once, when the client's side is gone (`rota.outcome`): the unit of TCP mode's
    feedback to the policy is the connection."""

    __slots__ = ("attempt", "client", "idle_sweeps", "outcome", "pool", "proxy", "upstream", "why")

    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy = proxy
        # The listener's pool; with SNI passthrough, the one the ClientHello's name picks.
        self.pool = proxy.pool
        self.client = _ClientSide(self)
        self.upstream: _Side | None = None
        self.attempt: Backend | None = None  # the backend counting this connection
        self.idle_sweeps = 0
        self.outcome = Outcome(proxy.name, proxy.loop.time())
        self.outcome.pool = proxy.pool
        self.why = ""  # the outcome's reason, once something other than a clean end

    @property
    def backend(self) -> Backend | None:
        return self.outcome.backend

    def side_lost(self, side: _Side) -> None:
        self._release()
        if side is self.client:
            self._end()

    def _end(self) -> None:
        """The connection's one end: its outcome goes to the listener's observers."""
        outcome = self.outcome
        if outcome.end is End.OPEN:
            outcome.end = End.COMPLETE if outcome.backend is not None else End.LOCAL
            outcome.finished = self.proxy.loop.time()
            if self.proxy.observers:
                self.describe()
            self.proxy.finished(self)

    def describe(self) -> None:
        """The facts only observers read (`rota.outcome`): the client's address (the PROXY
        header's source when one was accepted) and why the connection ended."""
        outcome = self.outcome
        source: proxy_protocol.Address | None = None
        if getattr(self.client, "transport", None) is not None:
            source = self._endpoints()[0]
        outcome.client = hostport(source[0], source[1]) if source is not None else ""
        outcome.reason = self.why or (COMPLETED if self.upstream is not None else CLIENT_CLOSED)

    def _release(self) -> None:
        backend = self.attempt
        if backend is not None:
            self.attempt = None
            backend.pool.ended(backend, self.outcome)

    def abort(self) -> None:
        for side in (self.client, self.upstream):
            if side is not None and side.open:
                side.transport.abort()

    async def run(self, sock: socket.socket) -> None:
        proxy = self.proxy
        loop = proxy.loop
        client = self.client
        settings = proxy.settings
        if settings.accept_proxy or proxy.sni is not None:
            # Before the transport exists: the header may arrive with connection_made.
            client.header_waiter = loop.create_future()
        tls = proxy.tls
        try:
            if tls is None:
                await loop.connect_accepted_socket(lambda: client, sock)
            else:
                # TLS termination: the handshake counts against the header timeout.
                await loop.connect_accepted_socket(
                    lambda: client,
                    sock,
                    ssl=tls.context(),
                    ssl_handshake_timeout=settings.proxy_header_timeout,
                )
        except OSError as exc:  # a TLS handshake that failed (SSLError...): counted
            if tls is None:
                sock.close()
                self.why = CLIENT_CLOSED
            else:
                tls.failures.failed(exc)
                self.why = REFUSED
            self._end()
            return
        if not client.open:
            # Gone already (connection_lost has run); mark the waiter's error as seen.
            if client.header_waiter is not None and client.header_waiter.done():
                client.header_waiter.exception()
            return
        if client.header_waiter is not None:
            try:
                async with asyncio.timeout(settings.proxy_header_timeout):
                    await client.header_waiter
            except (
                proxy_protocol.ProxyProtocolError,
                Refused,
                TimeoutError,
                ConnectionError,
            ) as exc:
                if proxy.sni is not None:
                    proxy.sni_failures.failed(exc)
                else:
                    log.debug("client %s: no valid PROXY header: %s", peer_name(client), exc)
                if not self.why:
                    self.why = (
                        TIMEOUT
                        if isinstance(exc, TimeoutError)
                        else CLIENT_CLOSED
                        if isinstance(exc, ConnectionError)
                        else REFUSED
                    )
                client.transport.abort()
                return
        if proxy.sni is not None:
            pool = proxy.sni.pick(client.server_name)
            if pool is None:
                log.debug("client %s: no route for %s", peer_name(client), client.server_name)
                proxy.sni_failures.failed(Refused("no route for the server name"))
                client.transport.abort()
                return
            self.pool = self.outcome.pool = pool
        await self._connect()

    async def _connect(self) -> None:
        proxy = self.proxy
        client = self.client
        tried: list[Backend] = []
        pool = self.pool
        if pool is None:
            client.transport.close()
            return
        # The listener's own pool: its settings' timeout; a pool SNI chose: that pool's.
        timeout = proxy.settings.connect_timeout if pool is proxy.pool else pool.timeouts.connect
        ip = str(client.transport.get_extra_info("peername", ("",))[0]).encode()
        while client.open:
            backend = pool.pick(tried, None, ip)
            if backend is None:
                # Every server at its max_requests: wait for one to finish a connection, for
                # up to the pool's queue_timeout (as HTTP requests do).
                full = pool.queue_timeout > 0 and pool.anyone_full(tried)
                if full and await _wait_for_room(pool, pool.queue_timeout):
                    continue
                # Nothing (left) to try: the client learns at once, rather than hanging.
                log.debug("client %s: no backend available", peer_name(client))
                self.why = self.why or REFUSED
                client.transport.close()
                return
            tried.append(backend)
            outcome = self.outcome
            outcome.retries = len(tried) - 1
            outcome.backend = self.attempt = backend
            backend.active += 1
            pool.policy.started(backend)
            # Joined to the client before connecting: whatever the backend sends first
            # (a greeting, an EOF) finds its way to the client.
            upstream = _Side(self)
            upstream.peer, upstream.out = client, client.transport
            begun = proxy.loop.time()
            try:
                async with asyncio.timeout(timeout):
                    await proxy.loop.create_connection(
                        _const(upstream),
                        backend.host,
                        backend.port,
                        ssl=pool.tls,
                        server_hostname=(pool.tls_name or backend.host) if pool.tls else None,
                    )
                outcome.connect_time = proxy.loop.time() - begun
            except TimeoutError:
                self._release()
                proxy.backend_error(backend, "connect timeout")
                continue
            except ssl.SSLError as exc:
                self._release()
                proxy.backend_error(backend, tls_reason(exc))
                continue
            except OSError as exc:
                self._release()
                proxy.backend_error(backend, _reason(exc))
                continue
            self._join(backend, upstream)
            return

    def _join(self, backend: Backend, upstream: _Side) -> None:
        client = self.client
        up = upstream.transport
        self.upstream = upstream
        if not client.open:
            up.close()
            return
        client.peer, client.out = upstream, up
        first = bytes(client.pending)
        client.pending = bytearray()
        version = self.proxy.settings.send_proxy
        if version is not None:
            # Section 2.1 of the PROXY spec: the header goes out at once, before any data.
            first = proxy_protocol.encode(version, *self._endpoints()) + first
        if first:
            up.write(first)  # may fill the backend's write buffer: upstream.full
        if client.read_done:
            up.write_eof()
        elif not upstream.full:
            client.transport.resume_reading()
        if client.full:
            # The backend spoke first and filled the client's buffer before the join: that
            # pause_writing found no peer to pause. resume_writing will resume it.
            up.pause_reading()

    def _endpoints(self) -> tuple[proxy_protocol.Address | None, proxy_protocol.Address | None]:
        """The client's address and the address it connected to: from the PROXY header
        the client sent, if it carried addresses, else from the socket itself."""
        header = self.client.header
        if header is not None and header.source is not None and header.family in _IP_FAMILIES:
            return header.source, header.destination
        transport = self.client.transport
        return _address(transport.get_extra_info("peername")), _address(
            transport.get_extra_info("sockname")
        )


_IP_FAMILIES = (proxy_protocol.Family.INET, proxy_protocol.Family.INET6)


def _address(raw: Any) -> proxy_protocol.Address | None:
    if isinstance(raw, tuple) and len(raw) >= 2:
        return str(raw[0]), int(raw[1])
    return None


def _reason(exc: OSError) -> str:
    # asyncio words it "Connect call failed (...)", uvloop "[Errno 111] ...": say it the
    # same way whichever loop runs, and as HTTP mode does ("connection refused").
    return os.strerror(exc.errno).lower() if exc.errno else str(exc)


class _Room:
    """A connection waiting in the pool's queue (a `rota.pool.Waiter`)."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[None]) -> None:
        self.future = future

    def resume(self) -> None:
        if not self.future.done():
            self.future.set_result(None)


async def _wait_for_room(pool: Pool, timeout: float) -> bool:
    """Wait in the pool's queue until a server has room (True) or `timeout` passes."""
    room = _Room(asyncio.get_running_loop().create_future())
    pool.waiting.append(room)
    try:
        async with asyncio.timeout(timeout):
            await room.future
        return True
    except TimeoutError:
        return False
    finally:
        if room in pool.waiting:
            pool.waiting.remove(room)


def _const(side: _Side) -> Callable[[], _Side]:
    return lambda: side


def peer_name(side: _Side) -> str:
    return str(side.transport.get_extra_info("peername"))
