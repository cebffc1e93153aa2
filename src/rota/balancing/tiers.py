"""What the built-in policies share: backup servers and slow start. Pure.

**Backups.** A pool's servers form two tiers: the primaries, and the servers marked
`backup`. `Tiered.update` gives the primaries to the policy itself and the backups to a twin
of the same class (`_spawn`), so each tier keeps its own cursor, weights and measurements. A
pick goes to the backups only when no primary is up (HAProxy's `backup`; as with its
`option allbackups`, every backup that is up shares the load, by the same policy). A primary
that is up but already tried for this request does not open the backups: a retry stays in
the primary tier, as in HAProxy.

**Slow start** (`PoolSpec.slow_start`, seconds): a server that came up less than that long ago
(`Backend.up_since`, stamped by the pool) gets `max(MIN_SHARE, elapsed / window)` of its
weight, Envoy's linear slow start (aggression 1.0, `min_weight_percent` 10%): HAProxy's
`slowstart` ramps the same way, so a server that restarts with cold caches is not handed its
full share at once. The policy hears of a server coming up through `update` and re-weighs on
each pick only while some ramp is running, so a pool without one never reads the clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Container
from typing import TYPE_CHECKING, Final

from rota.balancing.base import Policy
from rota.pool import Backend

if TYPE_CHECKING:
    from rota.http.head import RequestHead

Clock = Callable[[], float]

MIN_SHARE: Final = 0.1  # Envoy's slow_start_config.min_weight_percent default
NEVER: Final = float("-inf")
TINY: Final = 1e-6


def split(backends: tuple[Backend, ...]) -> tuple[tuple[Backend, ...], tuple[Backend, ...]]:
    """(primaries, backups), each in config order."""
    primaries = tuple([b for b in backends if not b.backup])
    backups = tuple([b for b in backends if b.backup])
    return primaries, backups


def any_up(backends: tuple[Backend, ...]) -> bool:
    # A loop, not any(): compiled, it skips a generator per call.
    for backend in backends:  # noqa: SIM110
        if backend.up:
            return True
    return False


def share(up_since: float, now: float, window: float) -> float:
    """The part of its weight a server that came up at `up_since` gets at `now`."""
    elapsed = now - up_since
    if window <= 0.0 or elapsed >= window:
        return 1.0
    return max(MIN_SHARE, elapsed / window)


def effective_weights(
    backends: tuple[Backend, ...], window: float, now: float
) -> tuple[list[float], float]:
    """Each backend's weight with slow start applied, and when the last ramp ends (NEVER
    if none is running)."""
    weights: list[float] = []
    until = NEVER
    for backend in backends:
        # The loader refuses weight 0; one built directly must not divide by zero.
        weight = float(backend.weight) if backend.weight > 0 else TINY
        if window > 0.0 and backend.up and now - backend.up_since < window:
            weight *= share(backend.up_since, now, window)
            until = max(until, backend.up_since + window)
        weights.append(weight)
    return weights, until


class Tiered(Policy):
    """A policy over one tier (`assign`, `choose`), with a twin over the backups.

    Subclasses implement `choose` over `_tier` (honouring `up` and `tried`) and `_spawn`;
    `_weights` holds the tier's effective weights, kept current by `_reweigh` (call it at the
    top of `choose` while `_ramping`). `_equal` says every effective weight is the same, the
    case a weighted policy can answer without weights.
    """

    __slots__ = ("_backup", "_equal", "_ramping", "_tier", "_weights", "clock", "slow_start")

    def __init__(self, slow_start: float = 0.0, clock: Clock = time.monotonic) -> None:
        self.slow_start = slow_start
        self.clock = clock
        self._tier: tuple[Backend, ...] = ()
        self._backup: Tiered | None = None
        self._weights: list[float] = []
        self._equal = True
        self._ramping = False

    def __repr__(self) -> str:
        backups = len(self._backup._tier) if self._backup is not None else 0
        return f"<{type(self).__name__} [{len(self._tier)} primaries, {backups} backups]>"

    def update(self, backends: tuple[Backend, ...]) -> None:
        primaries, backups = split(backends)
        self.assign(primaries)
        if backups:
            twin = self._backup
            if twin is None:
                twin = self._backup = self._spawn()
            twin.assign(backups)
        else:
            self._backup = None

    def pick(
        self, tried: Container[Backend], head: RequestHead | None, client_ip: bytes
    ) -> Backend | None:
        found = self.choose(tried, head, client_ip)
        if found is None:
            twin = self._backup
            if twin is not None and not any_up(self._tier):
                return twin.choose(tried, head, client_ip)
        return found

    def assign(self, tier: tuple[Backend, ...]) -> None:
        """This policy's servers, all of one tier (no split into backups here)."""
        self._tier = tier
        self._reweigh()

    def choose(
        self, tried: Container[Backend], head: RequestHead | None, client_ip: bytes
    ) -> Backend | None:
        """A backend of this tier that is up and not in `tried`, or None."""
        raise NotImplementedError

    def _spawn(self) -> Tiered:
        """An empty policy configured like this one, for the backup tier."""
        raise NotImplementedError

    def _reweigh(self) -> None:
        window = self.slow_start
        now = self.clock() if window > 0.0 else 0.0
        weights, until = effective_weights(self._tier, window, now)
        self._weights = weights
        self._ramping = until > now
        self._equal = all(w == weights[0] for w in weights)
        self._reweighed()

    def _reweighed(self) -> None:
        """Hook: `_weights` changed (a policy with derived tables rebuilds them)."""
