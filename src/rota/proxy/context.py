"""The state one HTTP listener's data plane shares in one worker: its settings, its routes
and the pools they lead to, live client connections, the observers of every exchange's end.
One explicit object instead of globals; `rota.instance.Runtime` builds it and swaps its
routes on `apply`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from rota.config.model import ListenerSpec, RouteSpec
from rota.http.routing import Route, RouteTable
from rota.outcome import Observer
from rota.pool import Backend, Pool
from rota.proxy.batching import WriteBatch

if TYPE_CHECKING:
    from rota.proxy.client import ClientConnection

log = logging.getLogger("rota")

# Called when a connection to a backend fails on real traffic (passive health check).
BackendErrorHook = Callable[[Backend, str], None]


def _nothing() -> None:
    pass


class ProxyContext:
    def __init__(
        self,
        listener: ListenerSpec,
        pools: Mapping[str, Pool],
        loop: asyncio.AbstractEventLoop,
        batch: WriteBatch | None = None,
    ) -> None:
        self.listener = listener
        self.name = listener.name
        self.timeouts = listener.timeouts
        self.limits = listener.limits
        # X-Forwarded-Proto of every forwarded request: a TLS listener's is https.
        self.proto = b"http" if listener.tls is None else b"https"
        self.loop = loop
        # The clock of exchange start and end times: the event loop's. asyncio's loop.time()
        # is time.monotonic(); uvloop's is the same clock rounded to its iteration's
        # millisecond. Called directly it is one C call, instead of a Python frame (asyncio)
        # or a method lookup (both) on every request.
        self.clock: Callable[[], float] = time.monotonic
        self.batch = batch if batch is not None else WriteBatch()
        # A coarse clock for deadlines, advanced by the sweep: setting a deadline is then a
        # float add instead of a call into the loop per event. Deadlines are only checked
        # by the sweep, so they gain nothing from a finer clock.
        self.now = loop.time()
        # Open client connections in the order they were accepted (a dict as an ordered
        # set): at the cap, make_room looks for the oldest it can close.
        self.clients: dict[ClientConnection, None] = {}
        self.accepted = 0  # client connections ever accepted
        # The accept side (rota.proxy.server.HttpListener sets both): `release` is called
        # once per client connection that leaves `clients`, so the listener may accept
        # another; `resume` when a connection has become one make_room can close.
        self.release: Callable[[], None] = _nothing
        self.resume: Callable[[], None] = _nothing
        # True once make_room found nothing to close (the listener stopped accepting):
        # the next connection to go idle calls room_made.
        self.full = False
        self.observers: list[Observer] = []
        # Whether an observer reads the request's facts (the access log: client address,
        # method, target...): formatted only then; the metrics' counters need none.
        self.describe = False
        self.on_backend_error: BackendErrorHook | None = None
        self.routes = RouteTable(())
        self.only: Route | None = None
        self.route_pools: list[Pool | None] = []
        self.pools: tuple[Pool, ...] = ()
        self.set_routes(listener.routes, pools)

    def __repr__(self) -> str:
        return f"<ProxyContext {self.name} [{len(self.clients)} clients]>"

    def set_routes(self, routes: Sequence[RouteSpec], pools: Mapping[str, Pool]) -> None:
        """Compile the listener's routes against the worker's pools (validated by the
        config loader: every pool a route names exists)."""
        table = RouteTable(routes)
        route_pools = [pools[r.pool] if r.pool is not None else None for r in table.routes]
        used: list[Pool] = []
        for pool in route_pools:
            if pool is not None and pool not in used:
                used.append(pool)
        self.routes = table
        self.route_pools = route_pools
        self.pools = tuple(used)
        self.only = table.only

    def backend_failed(self, backend: Backend, reason: str) -> None:
        """A connection to `backend` failed on real traffic. A TLS failure (a certificate
        that does not verify) is a configuration problem an operator must see; a refused
        connect is routine, and the health checks report the server's state."""
        if reason.startswith("tls:"):
            log.warning("backend %s: %s; trying the next", backend.name, reason)
        else:
            log.debug("backend %s: %s", backend.name, reason)
        hook = self.on_backend_error
        if hook is not None:
            hook(backend, reason)

    def make_room(self) -> bool:
        """At the connection cap (called by the listener before it accepts): close the
        oldest connection that costs most and delivers least (a request head still
        arriving, or idle between requests), so a new client is served now. False when
        every connection is busy: the listener then stops accepting, and new clients wait
        in the listen backlog until a connection ends or goes idle. A slow-loris
        flood fills the cap with heads that never end; nginx likewise closes idle
        keep-alive connections when it runs out of them."""
        for client in self.clients:
            if client.evictable():
                client.evict()
                return True
        self.full = True
        return False

    def room_made(self) -> None:
        """A connection went idle while the listener waits at the cap: accept again (the
        next client makes room from the oldest such connection)."""
        self.full = False
        self.resume()

    def sweep_interval(self) -> float:
        """How often deadlines are checked: fine enough for the smallest timeout."""
        t = self.timeouts
        smallest = min(t.header, t.idle, t.body, t.pool_idle)
        for pool in self.pools:
            smallest = min(smallest, pool.timeouts.response, pool.timeouts.pool_idle)
        return max(0.02, min(1.0, smallest / 4))

    def sweep(self) -> None:
        """Expire client connections past their deadline and stale pooled connections."""
        now = self.now = self.loop.time()
        expired = [c for c in self.clients if c.deadline <= now]
        for client in expired:
            client.expire(now)
        for pool in self.pools:
            for backend in pool.backends:
                idle = backend.idle
                if idle is not None:
                    idle.expire(now)
