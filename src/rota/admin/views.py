"""What the admin API shows: the pools and servers as they run, with their numbers over
the last second and the last minute (rota.admin.collect.Window). Pure: data in, JSON-ready
dicts out."""

from __future__ import annotations

from typing import Any

from rota.admin.collect import Window, minus, quantile
from rota.admin.exposition import server_state
from rota.instance import Runtime
from rota.observe.metrics import BUCKETS, Snapshot

NONE = [0] * (len(BUCKETS) + 1)


def _server_counts(snap: Snapshot) -> dict[tuple[str, str], tuple[int, int]]:
    """(pool, server) -> (requests, 5xx responses), TCP connections counted as requests."""
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for (_, pool, server, status), n in snap.get("requests", {}).items():
        if server:
            req, err = out.get((pool, server), (0, 0))
            out[(pool, server)] = (req + n, err + (n if status >= 500 else 0))
    for (_, pool, server), n in snap.get("tcp", {}).items():
        if server:
            req, err = out.get((pool, server), (0, 0))
            out[(pool, server)] = (req + n, err)
    return out


def _listener_counts(snap: Snapshot) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for (listener, _, _, status), n in snap.get("requests", {}).items():
        req, err = out.get(listener, (0, 0))
        out[listener] = (req + n, err + (n if status >= 500 else 0))
    for (listener, _, _), n in snap.get("tcp", {}).items():
        req, err = out.get(listener, (0, 0))
        out[listener] = (req + n, err)
    return out


def _listener_hist(snap: Snapshot) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for (listener, _), (counts, _) in snap.get("duration", {}).items():
        have = out.get(listener)
        out[listener] = (
            list(counts) if have is None else [a + b for a, b in zip(have, counts, strict=True)]
        )
    return out


def _latency(
    minute: tuple[Snapshot, Snapshot] | None, key: tuple[str, str]
) -> tuple[float | None, float | None]:
    """A server's p50 and p99 response time over the last minute."""
    if minute is None:
        return None, None
    new, old = minute
    hist = minus(
        new.get("upstream", {}).get(key, (NONE, 0.0))[0],
        old.get("upstream", {}).get(key, (NONE, 0.0))[0],
    )
    return quantile(0.5, hist), quantile(0.99, hist)


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


class Views:
    def __init__(self, runtime: Runtime, window: Window) -> None:
        self.runtime = runtime
        self.window = window

    def pools(self, total: Snapshot) -> dict[str, Any]:
        """GET /api/v1/pools: totals since start, latency over the last minute."""
        counts = _server_counts(total)
        failures = total.get("connect_failures", {})
        minute = self.window.minute()
        pools = []
        for pool in self.runtime.pools.values():
            servers = []
            for b in pool.backends:
                key = (pool.name, b.name)
                requests, errors = counts.get(key, (0, 0))
                p50, p99 = _latency(minute, key)
                servers.append(
                    {
                        "name": b.name,
                        "id": b.id,
                        "address": b.address,
                        "state": server_state(b),
                        "health": b.state.value.lower(),
                        "admin": b.admin.value,
                        "weight": b.weight,
                        "backup": b.backup,
                        "active": total.get("active", {}).get(key, 0),
                        "requests": requests,
                        "errors": errors + failures.get(key, 0),
                        "p50": _round(p50),
                        "p99": _round(p99),
                    }
                )
            spec = self.runtime.config.pool(pool.name)
            pools.append({"name": pool.name, "algorithm": spec.algorithm, "servers": servers})
        return {"pools": pools}

    def stats(self, now: float) -> dict[str, Any]:
        """GET /api/v1/stats: the dashboard's picture, once a second."""
        rates = self.window.rates()
        minute = self.window.minute()
        latest = self.window.sums[-1][1] if self.window.sums else {}
        listeners = []
        lc_new = lc_old = {}
        seconds = 1.0
        if rates is not None:
            seconds, new, old = rates
            lc_new, lc_old = _listener_counts(new), _listener_counts(old)
        lh_new = lh_old = {}
        if minute is not None:
            lh_new, lh_old = _listener_hist(minute[0]), _listener_hist(minute[1])
        for spec in self.runtime.config.listeners:
            req, err = lc_new.get(spec.name, (0, 0))
            req0, err0 = lc_old.get(spec.name, (0, 0))
            hist = minus(lh_new.get(spec.name, NONE), lh_old.get(spec.name))
            listeners.append(
                {
                    "name": spec.name,
                    "protocol": spec.protocol.value,
                    "address": spec.address,
                    "connections": latest.get("connections", {}).get(spec.name, 0),
                    "requests_per_s": round((req - req0) / seconds, 2),
                    "error_rate": round((err - err0) / (req - req0), 4) if req > req0 else 0.0,
                    "p50": _round(quantile(0.5, hist)),
                    "p99": _round(quantile(0.99, hist)),
                }
            )
        sc_new = sc_old = {}
        if rates is not None:
            sc_new, sc_old = _server_counts(rates[1]), _server_counts(rates[2])
        pools = []
        for pool in self.runtime.pools.values():
            servers = []
            for b in pool.backends:
                key = (pool.name, b.name)
                req, err = sc_new.get(key, (0, 0))
                req0, err0 = sc_old.get(key, (0, 0))
                p50, p99 = _latency(minute, key)
                servers.append(
                    {
                        "name": b.name,
                        "address": b.address,
                        "state": server_state(b),
                        "weight": b.weight,
                        "active": latest.get("active", {}).get(key, 0),
                        "requests_per_s": round((req - req0) / seconds, 2),
                        "error_rate": round((err - err0) / (req - req0), 4) if req > req0 else 0.0,
                        "p50": _round(p50),
                        "p99": _round(p99),
                        "history": list(self.window.history.get(key, ())),
                    }
                )
            algorithm = self.runtime.config.pool(pool.name).algorithm
            pools.append({"name": pool.name, "algorithm": algorithm, "servers": servers})
        return {"time": now, "interval": 1.0, "listeners": listeners, "pools": pools}
