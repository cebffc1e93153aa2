"""Round robin in config order, skipping backends that are down; smooth when weighted.

With backends a, b, c all up and equal weights the sequence is a, b, c, a, ...; with b down
it is a, c, a, c. The cursor always moves past the backend it returns, so a backend coming
back UP rejoins at its place in the cycle rather than restarting the sequence. This cursor is
the whole cost of the common case, and stays so: the weighted path is taken only when
weights differ (or a slow start is running).

When weights differ it is nginx's smooth weighted round robin
(ngx_http_upstream_get_peer): each pick adds every eligible server's weight to its
`current`, takes the largest, and takes the total off the winner. Over a cycle of
sum(weights) picks each server gets exactly its weight, spread out: 5, 1, 1 gives
a a b a c a a, never five a's in a row (a classic WRR would send a burst of five to one
server). Like nginx, only eligible servers (up, not tried) take part in a pick.
"""

from __future__ import annotations

import time
from collections.abc import Container
from typing import TYPE_CHECKING

from rota.balancing.tiers import Clock, Tiered, any_up
from rota.pool import Backend

if TYPE_CHECKING:
    from rota.http.head import RequestHead


class RoundRobin(Tiered):
    __slots__ = ("_current", "_cursor", "_next")

    def __init__(self, slow_start: float = 0.0, clock: Clock = time.monotonic) -> None:
        self._next = 0
        self._current: list[float] = []  # nginx's current_weight, per server of the tier
        self._cursor = True  # all effective weights equal: the plain cursor answers
        super().__init__(slow_start, clock)

    def _spawn(self) -> Tiered:
        return RoundRobin(self.slow_start, self.clock)

    def assign(self, tier: tuple[Backend, ...]) -> None:
        if tier != self._tier:
            self._current = [0.0] * len(tier)
        if self._next >= len(tier):
            self._next = 0
        super().assign(tier)

    def _reweighed(self) -> None:
        self._cursor = self._equal and not self._ramping

    def pick(
        self, tried: Container[Backend], head: RequestHead | None, client_ip: bytes
    ) -> Backend | None:
        # Tiered.pick with the cursor inlined: this is the request path's default policy.
        if self._cursor:
            backends = self._tier
            n = len(backends)
            start = self._next
            for step in range(n):
                i = (start + step) % n
                backend = backends[i]
                if backend.up and backend not in tried:
                    self._next = (i + 1) % n
                    return backend
            found = None
        else:
            found = self._smooth(tried)
        if found is None:
            twin = self._backup
            if twin is not None and not any_up(self._tier):
                return twin.choose(tried, head, client_ip)
        return found

    def choose(
        self, tried: Container[Backend], head: RequestHead | None, client_ip: bytes
    ) -> Backend | None:
        if not self._cursor:
            return self._smooth(tried)
        backends = self._tier
        n = len(backends)
        start = self._next
        for step in range(n):
            i = (start + step) % n
            backend = backends[i]
            if backend.up and backend not in tried:
                self._next = (i + 1) % n
                return backend
        return None

    def _smooth(self, tried: Container[Backend]) -> Backend | None:
        if self._ramping:
            self._reweigh()
        backends = self._tier
        weights = self._weights
        current = self._current
        best = -1
        best_current = 0.0
        total = 0.0
        for i in range(len(backends)):
            backend = backends[i]
            if not backend.up or backend in tried:
                continue
            weight = weights[i]
            now = current[i] + weight
            current[i] = now
            total += weight
            if best < 0 or now > best_current:
                best = i
                best_current = now
        if best < 0:
            return None
        current[best] = best_current - total
        return backends[best]
