"""What one process counts of its traffic, for `/metrics` and the admin API.

`Stats` is an observer of every exchange's and TCP connection's end (`rota.outcome`): a
few dict updates per request, nothing else on the data path. Counters are cumulative and
plain (ints, lists of bucket counts), so a snapshot is a picklable dict the supervisor sums
over workers (rota.admin.collect): one scrape, the whole load balancer, exact counts.

Labels are names (listener, pool, server), never objects: a snapshot outlives a reload.
A request rota answered itself has the server "" (and the pool "" when no route chose one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from rota.outcome import End, Outcome
from rota.proxy.exchange import Exchange

if TYPE_CHECKING:
    from rota.instance import Runtime
    from rota.pool import Backend

# Histogram bounds in seconds (Prometheus `le`): fine at the bottom, where a load balancer's
# answers are, and up to the longest response timeout anyone keeps.
BUCKETS: Final[tuple[float, ...]] = (
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
        # A scan from the bottom, not bisect: compiled, it compares native floats and
        # stops within a few bounds for the sub-second values a proxy sees, where
        # bisect_left compares boxed floats through the object protocol (about 4x the
        # instructions, measured with bench.icount --metrics).
        i = 0
        for bound in BUCKETS:
            if value <= bound:
                break
            i += 1
        self.counts[i] += 1
        self.sum += value


# The snapshot's shape (rota.admin.collect sums these): key tuples -> counts.
Snapshot = dict[str, Any]


class Cell:
    """One (listener, pool)'s counters. Nested dicts keyed by names: no tuple is built
    per request."""

    __slots__ = ("bytes_in", "bytes_out", "codes", "duration", "tcp")

    def __init__(self) -> None:
        self.codes: dict[str, dict[int, int]] = {}  # server -> status -> requests
        self.tcp: dict[str, int] = {}  # server -> TCP connections
        self.duration = Histogram()
        self.bytes_in = 0
        self.bytes_out = 0


class Stats:
    """One process's counters. `observe` is a `rota.outcome.Observer`."""

    __slots__ = ("cells", "connect_failures", "local", "refusals", "retries", "upstream")

    def __init__(self) -> None:
        self.cells: dict[str, dict[str, Cell]] = {}  # listener -> pool -> counters
        # pool -> server -> request sent to response head
        self.upstream: dict[str, dict[str, Histogram]] = {}
        self.local: dict[tuple[str, int], int] = {}  # (listener, code) -> rota's answers
        self.refusals: dict[tuple[str, int], int] = {}  # the part of those before a request
        self.connect_failures: dict[tuple[str, str], int] = {}
        self.retries: dict[str, int] = {}

    def cell(self, listener: str, pool: str) -> Cell:
        by_pool = self.cells.get(listener)
        if by_pool is None:
            by_pool = self.cells[listener] = {}
        cell = by_pool.get(pool)
        if cell is None:
            cell = by_pool[pool] = Cell()
        return cell

    def observe(self, o: Outcome) -> None:
        if o.end is End.REFUSED:
            self.refused(o.listener, o.status)
            return
        pool = o.pool
        pool_name = pool.name if pool is not None else ""
        cell = self.cell(o.listener, pool_name)
        backend = o.backend
        local = o.end is End.LOCAL
        server = backend.name if backend is not None and not local else ""
        status = o.status
        if status or isinstance(o, Exchange):
            codes = cell.codes.get(server)
            if codes is None:
                codes = cell.codes[server] = {}
            codes[status] = codes.get(status, 0) + 1
            if local:
                key = (o.listener, status)
                self.local[key] = self.local.get(key, 0) + 1
        else:
            cell.tcp[server] = cell.tcp.get(server, 0) + 1
        cell.duration.observe(o.finished - o.started)
        cell.bytes_in += o.bytes_in
        cell.bytes_out += o.bytes_out
        response_time = o.response_time
        if response_time >= 0.0 and server:
            servers = self.upstream.get(pool_name)
            if servers is None:
                servers = self.upstream[pool_name] = {}
            hist = servers.get(server)
            if hist is None:
                hist = servers[server] = Histogram()
            hist.observe(response_time)
        retries = o.retries
        if retries:
            self.retries[pool_name] = self.retries.get(pool_name, 0) + retries

    def connect_failed(self, backend: Backend) -> None:
        key = (backend.pool.name, backend.name)
        self.connect_failures[key] = self.connect_failures.get(key, 0) + 1

    def refused(self, listener: str, status: int) -> None:
        """rota answered a client before any request was read whole (400, 408, 414 or
        431): a request with no pool and no server."""
        key = (listener, status)
        self.refusals[key] = self.refusals.get(key, 0) + 1
        self.local[key] = self.local.get(key, 0) + 1

    def snapshot(self, runtime: Runtime) -> Snapshot:
        """Every counter, plus what is open now (connections, requests in flight)."""
        open_now: dict[str, int] = {}
        accepted: dict[str, int] = {}
        tls_failures: dict[tuple[str, str], int] = {}
        for name, running in runtime.listeners.items():
            for failures in running.tls_failures():
                for why, n in failures.counts.items():
                    tls_failures[(name, why)] = tls_failures.get((name, why), 0) + n
            if running.http is not None:
                ctx = running.http.ctx
                open_now[name] = len(ctx.clients)
                accepted[name] = ctx.accepted
            elif running.tcp is not None:
                open_now[name] = len(running.tcp.tunnels)
                cells = self.cells.get(name, {}).values()
                accepted[name] = open_now[name] + sum(sum(c.tcp.values()) for c in cells)
        active = {
            (pool.name, backend.name): backend.active
            for pool in runtime.pools.values()
            for backend in pool.backends
        }
        requests: dict[tuple[str, str, str, int], int] = {
            (listener, "", "", status): n for (listener, status), n in self.refusals.items()
        }
        tcp: dict[tuple[str, str, str], int] = {}
        duration: dict[tuple[str, str], tuple[list[int], float]] = {}
        byte_counts: dict[tuple[str, str], int] = {}
        for listener, by_pool in self.cells.items():
            for pool_name, cell in by_pool.items():
                for server, codes in cell.codes.items():
                    for status, n in codes.items():
                        key = (listener, pool_name, server, status)
                        requests[key] = requests.get(key, 0) + n
                for server, n in cell.tcp.items():
                    tcp[(listener, pool_name, server)] = n
                duration[(listener, pool_name)] = (list(cell.duration.counts), cell.duration.sum)
                for direction, n in (("in", cell.bytes_in), ("out", cell.bytes_out)):
                    key2 = (listener, direction)
                    byte_counts[key2] = byte_counts.get(key2, 0) + n
        upstream = {
            (pool_name, server): (list(h.counts), h.sum)
            for pool_name, servers in self.upstream.items()
            for server, h in servers.items()
        }
        return {
            "requests": requests,
            "tcp": tcp,
            "duration": duration,
            "upstream": upstream,
            "local": dict(self.local),
            "bytes": byte_counts,
            "connect_failures": dict(self.connect_failures),
            "retries": dict(self.retries),
            "tls_failures": tls_failures,
            "connections": open_now,
            "accepted": accepted,
            "active": active,
        }
