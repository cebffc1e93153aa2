"""The state one worker's data plane shares: config, pool, balancer, connection pools,
live client connections, counters. One explicit object instead of globals."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from rota.balancing import make_balancer
from rota.config.model import Config
from rota.pool import Backend, Pool
from rota.proxy.batching import WriteBatch
from rota.proxy.upstream import UpstreamPool

if TYPE_CHECKING:
    from rota.proxy.client import ClientConnection

log = logging.getLogger("rota")

# Called when a connection to a backend fails on real traffic (passive health check).
BackendErrorHook = Callable[[Backend, str], None]


class ProxyContext:
    def __init__(self, config: Config, pool: Pool, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.pool = pool
        self.loop = loop
        self.balancer = make_balancer(config.algorithm, pool)
        self.batch = WriteBatch()
        # A coarse clock for deadlines, advanced by the sweep: setting a deadline is then a
        # float add instead of a call into the loop per event. Deadlines are only checked
        # by the sweep, so they gain nothing from a finer clock.
        self.now = loop.time()
        self.upstream_pools = [
            UpstreamPool(b, config.limits.pool_size, config.timeouts.pool_idle, self.batch)
            for b in pool.backends
        ]
        self.clients: set[ClientConnection] = set()
        self.errors: Counter[int] = Counter()
        self.on_backend_error: BackendErrorHook | None = None

    def backend_failed(self, backend: Backend, reason: str) -> None:
        """A connection to `backend` failed on real traffic."""
        log.debug("backend %s: %s", backend.name, reason)
        hook = self.on_backend_error
        if hook is not None:
            hook(backend, reason)

    def count_error(self, status: int) -> None:
        self.errors[status] += 1

    def sweep_interval(self) -> float:
        """How often deadlines are checked: fine enough for the smallest timeout."""
        t = self.config.timeouts
        smallest = min(t.header, t.idle, t.response, t.body, t.pool_idle)
        return max(0.02, min(1.0, smallest / 4))

    def sweep(self) -> None:
        """Expire client connections past their deadline and stale pooled connections."""
        now = self.now = self.loop.time()
        expired = [c for c in self.clients if c.deadline <= now]
        for client in expired:
            client.expire(now)
        for upstreams in self.upstream_pools:
            upstreams.expire(now)
