"""The admin listener as the supervisor runs it: the HTTP server, the once-a-second
collection, and the changes an operator makes, sent to every worker.

The supervisor hands in what it owns (its `Runtime`, which holds every pool's health and
admin states; a way to ask the workers for their counters; a way to tell them of a change;
its `apply` and `reload`). Runtime changes (drain, weights, servers added or removed) live
in the running configuration only: a reload reads the file again and they are gone
(docs/admin.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Collection, Sequence

from rota.admin.api import Api
from rota.admin.collect import COUNTERS, HISTOGRAMS, Window, add, total
from rota.admin.collect import empty as empty_snapshot
from rota.admin.exposition import Exposition, RotaCollector, server_state
from rota.admin.http import AdminServer
from rota.admin.views import Views
from rota.config.model import BackendSpec, Config, PoolSpec
from rota.handover import Held
from rota.instance import ADMIN_REASON, Runtime
from rota.observe.metrics import Snapshot
from rota.pool import Admin, Backend, CheckKey

log = logging.getLogger("rota")

TICK_SECONDS = 1.0


class AdminService:
    def __init__(
        self,
        runtime: Runtime,
        *,
        ask: Callable[[], Awaitable[Sequence[Snapshot]]],
        tell: Callable[[tuple[object, ...]], None],
        apply: Callable[[Config, Collection[tuple[str, str]]], Awaitable[None]],
        reload: Callable[[], Awaitable[str | None]],
        health: Callable[[], dict[CheckKey, tuple[int, int]]],
        workers: Callable[[], Sequence[int]],
        token: str | None,
        lock: asyncio.Lock | None = None,
    ) -> None:
        self.runtime = runtime
        self._ask = ask
        self._tell = tell
        self._apply = apply
        self._reload = reload
        self.window = Window()
        self.views = Views(runtime, self.window)
        self.exposition = Exposition(RotaCollector(runtime, health, workers))
        self.retired: Snapshot = empty_snapshot()
        self.server = AdminServer(Api(self, token).handle)
        self._ticker: asyncio.Task[None] | None = None
        # One configuration change at a time: the reloader's lock, so that an operator's
        # change and a reload (SIGHUP, `rota reload`) never interleave.
        self._changes = lock if lock is not None else asyncio.Lock()
        self.port = 0
        self.host = ""

    async def start(self, host: str, port: int, sockets: list[socket.socket] | None = None) -> None:
        self.host = host
        self.port = await self.server.start(host, port, sockets)
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    def held(self) -> list[Held]:
        """The admin listener's sockets, for the new process of a binary upgrade."""
        return [Held("admin", self.host, self.port, 0, tuple(self.server.sockets))]

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self.server.close()

    # numbers

    async def scrape(self) -> Snapshot:
        """Every worker's counters now, summed (with those of workers that died)."""
        return total(await self._ask(), self.retired)

    async def metrics(self) -> bytes:
        snap = await self.scrape()
        return await asyncio.to_thread(self.exposition.render, snap)

    def retire(self, last: Snapshot) -> None:
        """A worker died: keep what it had counted (its last snapshot)."""
        add(self.retired, last, (*COUNTERS, *HISTOGRAMS))

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            try:
                snap = await self.scrape()
                states = {
                    (pool.name, b.name): server_state(b)
                    for pool in self.runtime.pools.values()
                    for b in pool.backends
                }
                self.window.push(time.time(), snap, states)
            except Exception:
                log.exception("admin: collecting the workers' counters failed")
            next_at += TICK_SECONDS
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    # changes

    def find(self, pool_name: str, server: str) -> Backend | None:
        """A server by its id, else its name."""
        pool = self.runtime.pools.get(pool_name)
        if pool is None:
            return None
        found = pool.get(server)
        if found is not None:
            return found
        return next((b for b in pool.backends if b.name == server), None)

    def set_admin(self, pool_name: str, backend_id: str, admin: Admin) -> None:
        pool = self.runtime.pools[pool_name]
        backend = pool.get(backend_id)
        if backend is not None:
            pool.set_admin(backend, admin, ADMIN_REASON)
        self._tell(("admin", pool_name, backend_id, admin.value))

    def clash(self, pool_name: str, spec: BackendSpec) -> str | None:
        for s in self.runtime.config.pool(pool_name).servers:
            if s.key == spec.key or s.name == spec.name:
                return f"pool {pool_name!r} already has a server named {spec.name!r}"
            if (s.host, s.port) == (spec.host, spec.port):
                return f"pool {pool_name!r} already has {spec.address} ({s.name})"
        return None

    async def add_server(self, pool_name: str, spec: BackendSpec) -> None:
        async with self._changes:
            config = self.runtime.config
            pool = config.pool(pool_name)
            new = dataclasses.replace(pool, servers=(*pool.servers, spec))
            await self._apply(_with_pool(config, new), [(pool_name, spec.key)])

    async def remove_server(self, pool_name: str, backend_id: str) -> str | None:
        """Take a server out: it gets no new request, those in flight finish, its idle
        connections close. Returns why not, if it cannot be removed."""
        async with self._changes:
            config = self.runtime.config
            pool = config.pool(pool_name)
            kept = tuple(s for s in pool.servers if s.key != backend_id)
            if not kept:
                return f"{backend_id!r} is the last server of pool {pool_name!r}"
            await self._apply(_with_pool(config, dataclasses.replace(pool, servers=kept)), [])
            return None

    async def set_weight(self, pool_name: str, backend_id: str, weight: int) -> None:
        async with self._changes:
            config = self.runtime.config
            pool = config.pool(pool_name)
            servers = tuple(
                dataclasses.replace(s, weight=weight) if s.key == backend_id else s
                for s in pool.servers
            )
            await self._apply(_with_pool(config, dataclasses.replace(pool, servers=servers)), [])

    async def reload(self) -> str | None:
        return await self._reload()  # the reloader takes the lock itself


def _with_pool(config: Config, pool: PoolSpec) -> Config:
    pools = tuple(pool if p.name == pool.name else p for p in config.pools)
    return dataclasses.replace(config, pools=pools)
