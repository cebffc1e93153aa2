"""What one process counts of its traffic, for `/metrics` and the admin API.

`Stats` is an observer of every exchange's and TCP connection's end (`rota.outcome`): a
few dict updates per request, nothing else on the data path. Counters are cumulative and
plain (ints, lists of bucket counts), so a snapshot is a picklable dict the supervisor sums
over workers (rota.admin.collect): one scrape, the whole load balancer, exact counts.

Labels are names (listener, pool, server), never objects: a snapshot outlives a reload.
A request rota answered itself has the server "" (and the pool "" when no route chose one).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING, Any

from rota.outcome import End, Outcome

if TYPE_CHECKING:
    from rota.instance import Runtime
    from rota.pool import Backend

# Histogram bounds in seconds (Prometheus `le`): fine at the bottom, where a load balancer's
# answers are, and up to the longest response timeout anyone keeps.
BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


class Histogram:
    """Counts per bucket (the last one is +Inf) and the sum of what was observed."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(BUCKETS, value)] += 1
        self.sum += value


# The snapshot's shape (rota.admin.collect sums these): key tuples -> counts.
Snapshot = dict[str, Any]


class Stats:
    """One process's counters. `observe` is a `rota.outcome.Observer`."""

    __slots__ = (
        "bytes",
        "connect_failures",
        "duration",
        "local",
        "requests",
        "retries",
        "tcp",
        "upstream",
    )

    def __init__(self) -> None:
        # (listener, pool, server, code) -> requests
        self.requests: dict[tuple[str, str, str, int], int] = {}
        # (listener, pool, server) -> TCP connections
        self.tcp: dict[tuple[str, str, str], int] = {}
        # (listener, pool) -> first byte in to last byte out
        self.duration: dict[tuple[str, str], Histogram] = {}
        # (pool, server) -> request sent to response head
        self.upstream: dict[tuple[str, str], Histogram] = {}
        # (listener, code) -> answers rota made itself
        self.local: dict[tuple[str, int], int] = {}
        # (listener, "in" | "out") -> bytes
        self.bytes: dict[tuple[str, str], int] = {}
        self.connect_failures: dict[tuple[str, str], int] = {}
        self.retries: dict[str, int] = {}

    def observe(self, o: Outcome) -> None:
        listener = o.listener
        pool = o.pool
        pool_name = pool.name if pool is not None else ""
        backend = o.backend
        local = o.end is End.LOCAL
        server = backend.name if backend is not None and not local else ""
        status = o.status
        if status or o.protocol:
            key = (listener, pool_name, server, status)
            requests = self.requests
            requests[key] = requests.get(key, 0) + 1
            if local:
                lkey = (listener, status)
                self.local[lkey] = self.local.get(lkey, 0) + 1
        else:
            tkey = (listener, pool_name, server)
            self.tcp[tkey] = self.tcp.get(tkey, 0) + 1
        dkey = (listener, pool_name)
        hist = self.duration.get(dkey)
        if hist is None:
            hist = self.duration[dkey] = Histogram()
        hist.observe(o.finished - o.started)
        if o.response_time >= 0.0 and server:
            ukey = (pool_name, server)
            hist = self.upstream.get(ukey)
            if hist is None:
                hist = self.upstream[ukey] = Histogram()
            hist.observe(o.response_time)
        if o.retries:
            self.retries[pool_name] = self.retries.get(pool_name, 0) + o.retries
        counted = self.bytes
        ikey = (listener, "in")
        counted[ikey] = counted.get(ikey, 0) + o.bytes_in
        okey = (listener, "out")
        counted[okey] = counted.get(okey, 0) + o.bytes_out

    def connect_failed(self, backend: Backend) -> None:
        key = (backend.pool.name, backend.name)
        self.connect_failures[key] = self.connect_failures.get(key, 0) + 1

    def refused(self, listener: str, status: int) -> None:
        """rota answered a client before any request was read whole (400, 408, 414, 431,
        or 503 over the connection cap): a request with no pool and no server."""
        key = (listener, "", "", status)
        self.requests[key] = self.requests.get(key, 0) + 1
        lkey = (listener, status)
        self.local[lkey] = self.local.get(lkey, 0) + 1

    def snapshot(self, runtime: Runtime) -> Snapshot:
        """Every counter, plus what is open now (connections, requests in flight)."""
        open_now: dict[str, int] = {}
        accepted: dict[str, int] = {}
        for name, running in runtime.listeners.items():
            if running.http is not None:
                ctx = running.http.ctx
                open_now[name] = len(ctx.clients)
                accepted[name] = ctx.accepted
            elif running.tcp is not None:
                open_now[name] = len(running.tcp.tunnels)
                ended = sum(n for (lst, _, _), n in self.tcp.items() if lst == name)
                accepted[name] = ended + open_now[name]
        active = {
            (pool.name, backend.name): backend.active
            for pool in runtime.pools.values()
            for backend in pool.backends
        }
        return {
            "requests": dict(self.requests),
            "tcp": dict(self.tcp),
            "duration": {k: (list(h.counts), h.sum) for k, h in self.duration.items()},
            "upstream": {k: (list(h.counts), h.sum) for k, h in self.upstream.items()},
            "local": dict(self.local),
            "bytes": dict(self.bytes),
            "connect_failures": dict(self.connect_failures),
            "retries": dict(self.retries),
            "connections": open_now,
            "accepted": accepted,
            "active": active,
        }
