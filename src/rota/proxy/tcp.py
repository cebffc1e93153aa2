"""TCP mode: relay bytes both ways between a client and a backend chosen per connection.

One `_Tunnel` per client connection joins two `asyncio.Protocol`s, the client side and the
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
import math
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from rota import proxy_protocol
from rota.balancing.base import Balancer
from rota.pool import Backend
from rota.proxy.listener import DEFAULT_BACKLOG, Listener, bind

log = logging.getLogger("rota.tcp")

# Called when connecting to a backend failed (refused, timed out, unreachable): the hook
# for passive health checks. (backend, reason)
BackendErrorHook = Callable[[Backend, str], None]

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


def _reset(transport: asyncio.Transport) -> None:
    """Close with an RST rather than a FIN: tells the peer the stream was cut short."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()


class _Side(asyncio.Protocol):
    """One socket of a tunnel. `peer` is the other socket's side and `out` its transport,
    set before this side can receive anything (see `_Tunnel`)."""

    __slots__ = ("active", "open", "out", "peer", "read_done", "transport", "tunnel")

    transport: asyncio.Transport  # set by connection_made; `open` says whether it is live

    def __init__(self, tunnel: _Tunnel) -> None:
        self.tunnel = tunnel
        self.out: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.active = False  # a byte arrived since the last idle sweep
        self.read_done = False  # EOF seen from this socket
        self.open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.open = True
        high = self.tunnel.proxy.settings.high_water
        self.transport.set_write_buffer_limits(high=high, low=high // 4)

    def data_received(self, data: bytes) -> None:
        self.active = True
        # `out` is set before this side is connected (backend) or resumed (client).
        self.out.write(data)  # type: ignore[union-attr]

    # My write buffer is over the mark: stop reading from the other side.
    def pause_writing(self) -> None:
        peer = self.peer
        if peer is not None and peer.open and not peer.read_done:
            peer.transport.pause_reading()

    def resume_writing(self) -> None:
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
        peer = self.peer
        if peer is not None and peer.open:
            if exc is None:
                peer.transport.close()
            else:
                _reset(peer.transport)
        self.tunnel.side_lost(self)


class _ClientSide(_Side):
    """The client's socket: before the backend is connected it holds what arrives."""

    __slots__ = ("header", "header_waiter", "pending")

    def __init__(self, tunnel: _Tunnel) -> None:
        super().__init__(tunnel)
        self.pending = bytearray()
        self.header: proxy_protocol.ProxyHeader | None = None
        self.header_waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if not self.tunnel.proxy.settings.accept_proxy:
            # Nothing to read until a backend is connected: leave it in the socket buffer.
            self.transport.pause_reading()

    def data_received(self, data: bytes) -> None:
        self.active = True
        out = self.out
        if out is not None:
            out.write(data)
            return
        self.pending += data
        waiter = self.header_waiter
        if waiter is None or waiter.done():
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


class _Tunnel:
    """One client connection and, once connected, its backend connection."""

    __slots__ = ("backend", "client", "idle_sweeps", "proxy", "upstream")

    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy = proxy
        self.client = _ClientSide(self)
        self.upstream: _Side | None = None
        self.backend: Backend | None = None
        self.idle_sweeps = 0

    def side_lost(self, side: _Side) -> None:
        if side is self.client:
            self.proxy.finished(self)
        elif self.backend is not None:
            self.backend.active -= 1
            self.backend = None

    def abort(self) -> None:
        for side in (self.client, self.upstream):
            if side is not None and side.open:
                side.transport.abort()

    async def run(self, sock: socket.socket) -> None:
        proxy = self.proxy
        loop = proxy.loop
        client = self.client
        settings = proxy.settings
        if settings.accept_proxy:
            # Before the transport exists: the header may arrive with connection_made.
            client.header_waiter = loop.create_future()
        try:
            await loop.connect_accepted_socket(lambda: client, sock)
        except OSError:
            sock.close()
            proxy.finished(self)
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
            except (proxy_protocol.ProxyProtocolError, TimeoutError, ConnectionError) as exc:
                log.debug("client %s: no valid PROXY header: %s", _peer(client), exc)
                client.transport.abort()
                return
        await self._connect()

    async def _connect(self) -> None:
        proxy = self.proxy
        client = self.client
        tried: list[Backend] = []
        while client.open:
            backend = proxy.balancer.pick(tried)
            if backend is None:
                # Nothing (left) to try: the client learns at once, rather than hanging.
                log.debug("client %s: no backend available", _peer(client))
                client.transport.close()
                return
            tried.append(backend)
            # Joined to the client before connecting: whatever the backend sends first
            # (a greeting, an EOF) finds its way to the client.
            upstream = _Side(self)
            upstream.peer, upstream.out = client, client.transport
            try:
                async with asyncio.timeout(proxy.settings.connect_timeout):
                    await proxy.loop.create_connection(_const(upstream), backend.host, backend.port)
            except TimeoutError:
                proxy.backend_error(backend, "connect timed out")
                continue
            except OSError as exc:
                proxy.backend_error(backend, exc.strerror or str(exc))
                continue
            self._join(backend, upstream)
            return

    def _join(self, backend: Backend, upstream: _Side) -> None:
        client = self.client
        up = upstream.transport
        backend.active += 1
        self.backend = backend
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
            up.write(first)
        if client.read_done:
            up.write_eof()
        else:
            client.transport.resume_reading()

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


def _const(side: _Side) -> Callable[[], _Side]:
    return lambda: side


def _peer(side: _Side) -> str:
    return str(side.transport.get_extra_info("peername"))


class TcpProxy:
    """TCP mode's listener: accept, pick a backend per connection, relay.

    `on_backend_error(backend, reason)` is called when a connect to a backend fails
    (refused, timed out, unreachable); the health integration uses it for passive checks."""

    def __init__(
        self,
        balancer: Balancer,
        settings: TcpSettings,
        *,
        on_backend_error: BackendErrorHook | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.balancer = balancer
        self.settings = settings
        self.on_backend_error = on_backend_error
        self.loop = loop or asyncio.get_running_loop()
        self.listener: Listener | None = None
        self.tunnels: set[_Tunnel] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        # Idle sweep: every `period` seconds; a tunnel with no byte in `limit` sweeps in a row
        # has been idle for at least idle_timeout and at most idle_timeout + period.
        idle = settings.idle_timeout
        self._period = min(max(idle / 4, 0.05), 5.0)
        self._limit = math.ceil(idle / self._period) + 1

    def __repr__(self) -> str:
        return f"<TcpProxy [{len(self.tunnels)} connections]>"

    @property
    def sockets(self) -> list[socket.socket]:
        return self.listener.sockets if self.listener is not None else []

    def start(self, sockets: list[socket.socket]) -> None:
        """Serve on already-bound, listening sockets (see `rota.proxy.listener.bind`)."""
        self.listener = Listener(self.loop, sockets, self._accepted, self.settings.max_connections)
        self.listener.start()
        self._sweeper = self.loop.call_later(self._period, self._sweep)

    def listen(self, host: str, port: int) -> list[socket.socket]:
        sockets = bind(host, port, self.settings.backlog)
        self.start(sockets)
        return sockets

    def close(self) -> None:
        """Stop accepting and abort every open connection."""
        if self.listener is not None:
            self.listener.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for task in list(self._tasks):
            task.cancel()
        for tunnel in list(self.tunnels):
            tunnel.abort()

    def _accepted(self, sock: socket.socket) -> None:
        tunnel = _Tunnel(self)
        self.tunnels.add(tunnel)
        task = self.loop.create_task(tunnel.run(sock))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def finished(self, tunnel: _Tunnel) -> None:
        if tunnel in self.tunnels:
            self.tunnels.remove(tunnel)
            if self.listener is not None:
                self.listener.release()

    def backend_error(self, backend: Backend, reason: str) -> None:
        log.info("backend %s: connect failed: %s; trying the next", backend.name, reason)
        hook = self.on_backend_error
        if hook is not None:
            hook(backend, reason)

    def _sweep(self) -> None:
        limit = self._limit
        for tunnel in list(self.tunnels):
            upstream = tunnel.upstream
            if upstream is None:
                continue  # still setting up: the header and connect timeouts apply
            client = tunnel.client
            if client.active or upstream.active:
                client.active = upstream.active = False
                tunnel.idle_sweeps = 0
                continue
            tunnel.idle_sweeps += 1
            if tunnel.idle_sweeps >= limit:
                log.debug("client %s: idle timeout", _peer(client))
                tunnel.abort()
        self._sweeper = self.loop.call_later(self._period, self._sweep)
