"""Weighted random: each pick an independent draw, a server's chance its share of the weight.

No state shared between picks, so nothing for many workers or proxies to synchronise, at the
price of round robin's evenness over short runs (Envoy's RANDOM, HAProxy's `random(1)`).
With equal weights one draw picks the position; otherwise a bisection over the cumulative
weights. A draw that lands on a server that is down or already tried is drawn again among
the usable servers only, so the shares among those stay weighted.
"""

from __future__ import annotations

import random
import time
from bisect import bisect_right
from collections.abc import Container
from typing import TYPE_CHECKING

from rota.balancing.tiers import Clock, Tiered
from rota.pool import Backend

if TYPE_CHECKING:
    from rota.http.head import RequestHead


class WeightedRandom(Tiered):
    __slots__ = ("_cumulative", "rng")

    def __init__(
        self,
        slow_start: float = 0.0,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.rng = rng if rng is not None else random.Random()
        self._cumulative: list[float] = []
        super().__init__(slow_start, clock)

    def _spawn(self) -> Tiered:
        return WeightedRandom(self.slow_start, self.clock, self.rng)

    def _reweighed(self) -> None:
        cumulative: list[float] = []
        total = 0.0
        for weight in self._weights:
            total += weight
            cumulative.append(total)
        self._cumulative = cumulative

    def choose(
        self, tried: Container[Backend], head: RequestHead | None, client_ip: bytes
    ) -> Backend | None:
        if self._ramping:
            self._reweigh()
        backends = self._tier
        n = len(backends)
        if n == 0:
            return None
        draw = self.rng.random()
        if self._equal:
            i = int(draw * n)
        else:
            cumulative = self._cumulative
            i = min(bisect_right(cumulative, draw * cumulative[-1]), n - 1)
        backend = backends[i]
        if backend.up and backend not in tried:
            return backend
        # Drawn again among the usable servers, still by weight.
        usable: list[int] = []
        total = 0.0
        weights = self._weights
        for k in range(n):
            other = backends[k]
            if other.up and other not in tried:
                usable.append(k)
                total += weights[k]
        if not usable:
            return None
        point = self.rng.random() * total
        for k in usable:
            point -= weights[k]
            if point < 0.0:
                return backends[k]
        return backends[usable[-1]]
