"""TCP mode: one `Tunnel` per client connection, relaying bytes to a backend chosen per
connection.

The tunnel's set-up is the only task per connection: the TLS handshake when the listener
terminates TLS, an optional PROXY header or the ClientHello of SNI passthrough (which picks
the pool), then connecting to a backend, the next one on failure, waiting in the pool's
queue when every server is full. Once joined, the two sides relay by callbacks alone
(rota.proxy.tcp_relay) and the task ends. The tunnel's `Outcome` ends once, when the
client's side is gone. `TcpSettings` are a TCP listener's knobs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rota import proxy_protocol
from rota.config.model import Config, ListenerSpec, hostport
from rota.outcome import CLIENT_CLOSED, COMPLETED, REFUSED, TIMEOUT, End, Outcome
from rota.pool import Backend, Pool
from rota.proxy.listener import DEFAULT_BACKLOG
from rota.proxy.tcp_relay import ClientSide, Side, peer_name
from rota.tls.client import describe as tls_reason
from rota.tls.failures import Refused

if TYPE_CHECKING:
    from rota.proxy.tcp_server import TcpProxy

log = logging.getLogger("rota.tcp")


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


class Tunnel:
    """One client connection and, once connected, its backend connection. Its `outcome`
    ends once, when the client's side is gone (`rota.outcome`): the unit of TCP mode's
    feedback to the policy is the connection."""

    __slots__ = ("attempt", "client", "idle_sweeps", "outcome", "pool", "proxy", "upstream", "why")

    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy = proxy
        # The listener's pool; with SNI passthrough, the one the ClientHello's name picks.
        self.pool = proxy.pool
        self.client = ClientSide(self)
        self.upstream: Side | None = None
        self.attempt: Backend | None = None  # the backend counting this connection
        self.idle_sweeps = 0
        self.outcome = Outcome(proxy.name, proxy.loop.time())
        self.outcome.pool = proxy.pool
        self.why = ""  # the outcome's reason, once something other than a clean end

    @property
    def backend(self) -> Backend | None:
        return self.outcome.backend

    def side_lost(self, side: Side) -> None:
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
            upstream = Side(self)
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

    def _join(self, backend: Backend, upstream: Side) -> None:
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


def _const(side: Side) -> Callable[[], Side]:
    return lambda: side
