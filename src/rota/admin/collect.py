"""The whole load balancer's numbers, from every worker's counters.

Workers count (rota.observe.metrics.Stats); the supervisor asks each for a snapshot over
the control channel and sums them here. A scrape asks afresh, so its counts are exact at
that moment. Once a second a `Window` keeps the sum (the last minute of them) for rates and
latency percentiles, and each server's state, for the dashboard's timeline: fixed-size
rings, so a dashboard left open for days costs no more memory than one left for a minute.

A worker that dies loses nothing already counted: its last snapshot (at most a second old)
is kept as `retired` and added to every later sum.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from rota.observe.metrics import BUCKETS, Snapshot

# Keys of a snapshot that are counters (summed over workers and kept after a worker dies),
# and gauges (summed over the workers alive now).
COUNTERS = (
    *("requests", "tcp", "local", "bytes", "connect_failures", "retries", "accepted"),
    "tls_failures",
)
HISTOGRAMS = ("duration", "upstream")
GAUGES = ("connections", "active")
WINDOW_SECONDS = 60
HISTORY_SECONDS = 300

Hist = tuple[list[int], float]


def empty() -> Snapshot:
    return {key: {} for key in (*COUNTERS, *HISTOGRAMS, *GAUGES)}


def add(total: Snapshot, snap: Snapshot, keys: Iterable[str] | None = None) -> None:
    """Add `snap` into `total`, key by key (histograms bucket by bucket)."""
    for name in keys if keys is not None else (*COUNTERS, *HISTOGRAMS, *GAUGES):
        into: dict[Any, Any] = total.setdefault(name, {})
        for key, value in snap.get(name, {}).items():
            if name in HISTOGRAMS:
                counts, summed = value
                have = into.get(key)
                if have is None:
                    into[key] = (list(counts), summed)
                else:
                    into[key] = (
                        [a + b for a, b in zip(have[0], counts, strict=True)],
                        have[1] + summed,
                    )
            else:
                into[key] = into.get(key, 0) + value


def total(snapshots: Iterable[Snapshot], retired: Snapshot) -> Snapshot:
    result = empty()
    add(result, retired, (*COUNTERS, *HISTOGRAMS))
    for snap in snapshots:
        add(result, snap)
    return result


def quantile(q: float, counts: list[int]) -> float | None:
    """The q-quantile of a histogram, interpolated in its bucket (as Prometheus's
    histogram_quantile does); None without observations."""
    n = sum(counts)
    if n == 0:
        return None
    rank = q * n
    seen = 0
    for i, c in enumerate(counts):
        if seen + c >= rank and c:
            lo = BUCKETS[i - 1] if i > 0 else 0.0
            if i >= len(BUCKETS):
                return BUCKETS[-1]  # in +Inf: the largest bound is all that is known
            return lo + (BUCKETS[i] - lo) * (rank - seen) / c
        seen += c
    return BUCKETS[-1]


def minus(a: list[int], b: list[int] | None) -> list[int]:
    return list(a) if b is None else [x - y for x, y in zip(a, b, strict=True)]


class Window:
    """The last minute of sums, one a second, and each server's recent states."""

    def __init__(self) -> None:
        self.sums: deque[tuple[float, Snapshot]] = deque(maxlen=WINDOW_SECONDS + 1)
        self.history: dict[tuple[str, str], deque[str]] = {}

    def push(self, now: float, snap: Snapshot, states: dict[tuple[str, str], str]) -> None:
        self.sums.append((now, snap))
        for key, state in states.items():
            ring = self.history.get(key)
            if ring is None:
                ring = self.history[key] = deque(maxlen=HISTORY_SECONDS)
            ring.append(state)
        for key in [k for k in self.history if k not in states]:
            del self.history[key]  # a removed server: its timeline goes with it

    def rates(self) -> tuple[float, Snapshot, Snapshot] | None:
        """(seconds between, newest, the one before): for per-second rates."""
        if len(self.sums) < 2:
            return None
        (t0, a), (t1, b) = self.sums[-2], self.sums[-1]
        return max(t1 - t0, 1e-9), b, a

    def minute(self) -> tuple[Snapshot, Snapshot] | None:
        """(newest, oldest) of the last minute: for latency over the last minute."""
        if len(self.sums) < 2:
            return None
        return self.sums[-1][1], self.sums[0][1]
