"""Power of two choices over peak-EWMA latency: the Finagle / Linkerd load balancer.

Each pick draws two different servers at random and sends the request to the one with the
lower load score, `cost * (active + 1)` (divided by the effective weight when weights
differ), where `cost` is a peak-sensitive, time-decayed moving average of the server's
latency (Finagle's `PeakEwma`, Linkerd's `PeakEwma` balancer). Two random choices instead of
the global best keep many proxies that share servers from all stampeding onto the same
"best" one (Mitzenmacher, "The Power of Two Choices in Randomized Load Balancing").

The cost, per server:

- **A sample** is each ended exchange's latency, `finished - started` on the loop's clock.
  If it is above the current cost it becomes the cost at once (peak sensitive: a server
  that turns slow is avoided from its first slow answer); otherwise the cost moves toward
  it with weight `1 - exp(-dt / DECAY)`, dt being the time since the previous sample (an
  EWMA over an unevenly spaced series, as Finagle does, so a busy server's average is not
  dragged by its sheer number of samples).
- **A failure** (an attempt that never got an answer, one that rota answered itself with a
  5xx, or a response cut short) is a sample of `penalty` seconds: the server is avoided at
  once and tried again once that decays. A server's own 5xx answers count by their latency.
- **Decay.** Read at pick time, the cost drifts toward `default_rtt` with time constant
  `DECAY` (Finagle and Linkerd: 10 s). A server shunned as slow gets no samples, so its cost
  sinks until it wins a comparison against busy servers, takes a request, and is measured
  again: the probe that tells rota it has recovered.
- **Never measured** (a new server): scores 0 while it has nothing in flight, so it is
  probed at once, and a huge penalty while that first request is out (Finagle), so a new
  server that turns out slow takes one request, not a burst.

Client disconnects (`CANCELLED`) only ever raise the cost (the server took at least that
long); WebSocket tunnels say nothing about latency and are ignored.
"""

from __future__ import annotations

import random
import time
from collections.abc import Container
from math import exp
from typing import TYPE_CHECKING, Final

from rota.balancing.tiers import Clock, Tiered
from rota.outcome import End, Outcome
from rota.pool import Backend

if TYPE_CHECKING:
    from rota.http.head import RequestHead

DECAY: Final = 10.0  # seconds: Finagle's decayTime and Linkerd's default decay
DEFAULT_RTT: Final = 0.001  # seconds: what the cost of an unused server drifts toward
PENALTY: Final = 1.0  # seconds: the sample a failed attempt counts as
UNMEASURED: Final = 1e12  # Finagle's Penalty: a never-measured server with a probe out


class Load:
    """What p2c knows of one server."""

    __slots__ = ("cost", "seen", "stamp")

    def __init__(self) -> None:
        self.cost = 0.0  # seconds, peak-EWMA of latency
        self.stamp = 0.0  # the policy's clock at the last sample
        self.seen = False  # any sample yet

    def __repr__(self) -> str:
        return f"<Load {self.cost * 1000:.3f} ms>" if self.seen else "<Load unmeasured>"


class P2C(Tiered):
    __slots__ = ("_by_backend", "_loads", "decay", "default_rtt", "penalty", "rng")

    def __init__(
        self,
        slow_start: float = 0.0,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        decay: float = DECAY,
        default_rtt: float = DEFAULT_RTT,
        penalty: float = PENALTY,
    ) -> None:
        self.rng = rng if rng is not None else random.Random()
        self.decay = decay
        self.default_rtt = default_rtt
        self.penalty = penalty
        self._loads: list[Load] = []  # per server of the tier, in order
        self._by_backend: dict[Backend, Load] = {}
        super().__init__(slow_start, clock)

    def _spawn(self) -> Tiered:
        return P2C(
            self.slow_start, self.clock, self.rng, self.decay, self.default_rtt, self.penalty
        )

    def assign(self, tier: tuple[Backend, ...]) -> None:
        # Measurements follow the server, not its position; a removed server's go with it.
        known = self._by_backend
        loads = [known.get(backend) or Load() for backend in tier]
        self._loads = loads
        self._by_backend = dict(zip(tier, loads, strict=True))
        super().assign(tier)

    def load(self, backend: Backend) -> Load | None:
        """What is known of `backend` (for tests and introspection)."""
        found = self._by_backend.get(backend)
        if found is None and self._backup is not None and isinstance(self._backup, P2C):
            return self._backup.load(backend)
        return found

    def cost(self, load: Load, now: float) -> float:
        """The load's cost at `now`: its average, drifted toward `default_rtt`."""
        default = self.default_rtt
        return default + (load.cost - default) * exp((load.stamp - now) / self.decay)

    def _score(self, i: int, now: float) -> float:
        backend = self._tier[i]
        load = self._loads[i]
        if not load.seen:
            return 0.0 if backend.active == 0 else UNMEASURED + backend.active
        score = self.cost(load, now) * (backend.active + 1)
        if not self._equal:
            score /= self._weights[i]
        return score

    def choose(
        self, tried: Container[Backend], head: RequestHead | None, client_ip: bytes
    ) -> Backend | None:
        if self._ramping:
            self._reweigh()
        backends = self._tier
        n = len(backends)
        if n <= 1:
            if n == 1 and backends[0].up and backends[0] not in tried:
                return backends[0]
            return None
        draw = self.rng.random
        i = int(draw() * n)
        j = int(draw() * (n - 1))
        if j >= i:
            j += 1
        first = backends[i]
        second = backends[j]
        if not (first.up and first not in tried and second.up and second not in tried):
            # Some server drawn is out: draw again among the usable ones only.
            usable = [k for k in range(n) if backends[k].up and backends[k] not in tried]
            m = len(usable)
            if m <= 1:
                return backends[usable[0]] if m else None
            x = int(draw() * m)
            y = int(draw() * (m - 1))
            if y >= x:
                y += 1
            i = usable[x]
            j = usable[y]
        now = self.clock()
        return backends[j] if self._score(j, now) < self._score(i, now) else backends[i]

    def ended(self, backend: Backend, outcome: Outcome) -> None:
        load = self._by_backend.get(backend)
        if load is None:
            if self._backup is not None:
                self._backup.ended(backend, outcome)
            return
        end = outcome.end
        if end is End.COMPLETE:
            self.observe(load, outcome.finished - outcome.started, False)
        elif (
            end is End.OPEN or end is End.CUT_SHORT or (end is End.LOCAL and outcome.status >= 500)
        ):
            self.observe(load, self.penalty, True)
        elif end is End.CANCELLED:
            self.observe(load, outcome.finished - outcome.started, True)

    def observe(self, load: Load, rtt: float, peak_only: bool) -> None:
        """One latency sample (seconds); with `peak_only` it can raise the cost only."""
        now = self.clock()
        if not load.seen:
            load.cost = rtt
            load.seen = True
        elif rtt > self.cost(load, now):
            load.cost = rtt
        elif not peak_only:
            w = exp((load.stamp - now) / self.decay)
            load.cost = load.cost * w + rtt * (1.0 - w)
        else:
            return
        load.stamp = now
