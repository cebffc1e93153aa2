"""TCP mode's server: accept (up to the connection cap), hand each client to a `Tunnel`,
sweep idle tunnels, shut down gracefully. The relay itself is in `rota.proxy.tcp`."""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import time
from collections.abc import Callable

from rota.outcome import TIMEOUT, Observer
from rota.pool import Backend, Pool
from rota.proxy.listener import Listener, bind
from rota.proxy.tcp import TcpSettings, Tunnel
from rota.proxy.tcp_relay import peer_name
from rota.tls.failures import HandshakeFailures
from rota.tls.passthrough import SniTable
from rota.tls.server import ServerTls

log = logging.getLogger("rota.tcp")

# Called when connecting to a backend failed (refused, timed out, unreachable): the hook
# for passive health checks. (backend, reason)
BackendErrorHook = Callable[[Backend, str], None]


class TcpProxy:
    """TCP mode's listener: accept, pick a backend per connection, relay.

    `on_backend_error(backend, reason)` is called when a connect to a backend fails
    (refused, timed out, unreachable); the health integration uses it for passive checks."""

    def __init__(
        self,
        pool: Pool | None,
        settings: TcpSettings,
        *,
        name: str = "default",
        on_backend_error: BackendErrorHook | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        tls: ServerTls | None = None,
        sni: SniTable[Pool] | None = None,
    ) -> None:
        # `pool` is None only with `sni` (passthrough without a default pool).
        self.pool = pool
        self.name = name
        self.tls = tls  # terminate TLS (rota.tls.server)
        self.sni = sni  # route by the ClientHello's SNI, undecrypted (rota.tls.passthrough)
        self.sni_failures = HandshakeFailures(name, time.monotonic, "ClientHello")
        self.settings = settings
        self.observers: list[Observer] = []
        self.on_backend_error = on_backend_error
        self.loop = loop or asyncio.get_running_loop()
        self.listener: Listener | None = None
        self.tunnels: set[Tunnel] = set()
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

    def _accepted(self, sock: socket.socket, peer: object) -> None:
        tunnel = Tunnel(self)
        self.tunnels.add(tunnel)
        task = self.loop.create_task(tunnel.run(sock))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def finished(self, tunnel: Tunnel) -> None:
        if tunnel in self.tunnels:
            self.tunnels.remove(tunnel)
            if self.listener is not None:
                self.listener.release()
        for observer in self.observers:
            observer(tunnel.outcome)

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
                log.debug("client %s: idle timeout", peer_name(client))
                tunnel.why = tunnel.why or TIMEOUT
                tunnel.abort()
        self._sweeper = self.loop.call_later(self._period, self._sweep)


async def drain(proxy: TcpProxy, grace: float, now: asyncio.Event | None = None) -> None:
    """Stop accepting; let open connections finish for up to `grace` seconds (or until
    `now` is set: a second stop signal), then cut them."""
    if proxy.listener is not None:
        proxy.listener.close()
    loop = proxy.loop
    deadline = loop.time() + grace
    while proxy.tunnels and loop.time() < deadline and not (now and now.is_set()):
        await asyncio.sleep(0.05)
    proxy.close()
