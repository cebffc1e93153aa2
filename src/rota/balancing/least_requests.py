"""Least requests: the server with the fewest requests in flight, relative to its weight.

The score is `(active + 1) / weight`, HAProxy's leastconn key (`(served + 1) / eweight`,
lb_fwlc.c) and Envoy's least-request weight with active_request_bias 1: counting the request
being placed makes weights matter even when nothing is in flight (with `active / weight`
every idle server would score 0 and weights would be ignored at light load). With equal
weights that is simply the fewest `active`, compared as integers.

Ties go round robin: the scan starts after the server picked last, and the first best one
wins, so idle equal servers take turns instead of the first one taking everything.
"""

from __future__ import annotations

import time
from collections.abc import Container
from typing import TYPE_CHECKING

from rota.balancing.tiers import Clock, Tiered
from rota.pool import Backend

if TYPE_CHECKING:
    from rota.http.head import RequestHead


class LeastRequests(Tiered):
    __slots__ = ("_next",)

    def __init__(self, slow_start: float = 0.0, clock: Clock = time.monotonic) -> None:
        self._next = 0
        super().__init__(slow_start, clock)

    def _spawn(self) -> Tiered:
        return LeastRequests(self.slow_start, self.clock)

    def assign(self, tier: tuple[Backend, ...]) -> None:
        if self._next >= len(tier):
            self._next = 0
        super().assign(tier)

    def choose(
        self, tried: Container[Backend], head: RequestHead | None, client_ip: bytes
    ) -> Backend | None:
        if self._ramping:
            self._reweigh()
        backends = self._tier
        n = len(backends)
        start = self._next
        best = -1
        if self._equal:
            fewest = 0
            for step in range(n):
                i = start + step
                if i >= n:
                    i -= n
                backend = backends[i]
                if backend.up and backend not in tried:
                    active = backend.active
                    if best < 0 or active < fewest:
                        best = i
                        fewest = active
                        if active == 0:
                            break  # none can do better; the earliest after the cursor
        else:
            weights = self._weights
            lowest = 0.0
            for step in range(n):
                i = start + step
                if i >= n:
                    i -= n
                backend = backends[i]
                if backend.up and backend not in tried:
                    score = (backend.active + 1) / weights[i]
                    if best < 0 or score < lowest:
                        best = i
                        lowest = score
        if best < 0:
            return None
        self._next = best + 1 if best + 1 < n else 0
        return backends[best]
