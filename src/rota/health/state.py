"""The rise/fall state machine of one backend's health, and when to probe it next. Pure.

What may live here: counting results and computing times. No I/O, no threads, no clock
reads (times are passed in), no randomness other than a function passed in.

Semantics are HAProxy's (`rise`, `fall`, `observe layer4` + `on-error mark-down`):

- An UP backend goes DOWN after `fall` consecutive failed checks; one pass in between
  resets the count (HAProxy keeps `health` at its maximum while checks pass).
- A DOWN backend comes back UP after `rise` consecutive passed checks; one failure in
  between resets the count (HAProxy drops `health` back to 0).
- A passive failure (an error on real traffic) marks the backend DOWN at once and resets
  the pass count, so coming back still takes `rise` passes.

The machine counts results, not seconds, so it needs no clock; `ProbeSchedule` holds the
time arithmetic and takes `now` as an argument.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rota.pool import State


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of state, with the one-phrase reason the log line shows."""

    state: State
    reason: str


class RiseFall:
    """Counts consecutive passes and failures; reports a `Transition` when one is due."""

    __slots__ = ("_fall", "_rise", "_streak", "state")

    def __init__(self, rise: int, fall: int, state: State = State.UP) -> None:
        if rise < 1 or fall < 1:
            raise ValueError(f"rise and fall must be >= 1, got rise={rise} fall={fall}")
        self._rise = rise
        self._fall = fall
        self.state = state
        # Consecutive results that argue against the current state: failures while UP,
        # passes while DOWN. Results that agree with the state reset it to 0.
        self._streak = 0

    def __repr__(self) -> str:
        need = self._fall if self.state is State.UP else self._rise
        return f"<RiseFall {self.state.value} {self._streak}/{need}>"

    @property
    def streak(self) -> int:
        return self._streak

    def record(self, ok: bool, reason: str) -> Transition | None:
        """Take one check result; `reason` says what the check saw ("status 500",
        "connection refused"). Returns the transition it causes, if any."""
        if self.state is State.UP:
            if ok:
                self._streak = 0
                return None
            self._streak += 1
            if self._streak < self._fall:
                return None
            return self._enter(State.DOWN, reason)
        if not ok:
            self._streak = 0
            return None
        self._streak += 1
        if self._streak < self._rise:
            return None
        plural = "check" if self._rise == 1 else "checks"
        return self._enter(State.UP, f"{self._rise} {plural} passed")

    def force_down(self, reason: str) -> Transition | None:
        """A passive failure: DOWN at once, and any passes counted so far are forgotten."""
        if self.state is State.DOWN:
            self._streak = 0
            return None
        return self._enter(State.DOWN, reason)

    def _enter(self, state: State, reason: str) -> Transition:
        self.state = state
        self._streak = 0
        return Transition(state, reason)


class ProbeSchedule:
    """When the next probe of one backend is due.

    Probes start every `interval` seconds, measured from the start of the previous probe
    (so a slow probe does not stretch the period), each gap scaled by a random factor in
    [1 - jitter, 1 + jitter] so that the checkers of many backends drift apart instead of
    firing in lockstep (HAProxy's `spread-checks`). The first probe is due at once.

    `request_now` brings the next probe forward (a passive failure asks for one), but not
    closer than `min_gap` after the previous probe started, so a burst of failed requests
    cannot turn the checker into a busy loop against a dead backend.
    """

    __slots__ = ("_due", "_interval", "_jitter", "_last_start", "_min_gap", "_rand")

    def __init__(
        self,
        interval: float,
        now: float,
        *,
        jitter: float = 0.1,
        min_gap: float | None = None,
        rand: Callable[[], float],
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0, got {interval}")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {jitter}")
        self._interval = interval
        self._jitter = jitter
        self._min_gap = interval / 10 if min_gap is None else min_gap
        self._rand = rand  # uniform in [0, 1), e.g. random.Random().random
        self._last_start: float | None = None
        self._due = now

    @property
    def due(self) -> float:
        return self._due

    def wait(self, now: float) -> float:
        """Seconds until the next probe is due; 0 if it is due now."""
        return max(0.0, self._due - now)

    def started(self, now: float) -> None:
        """A probe started at `now`; the next is due one jittered interval later."""
        self._last_start = now
        factor = 1.0 + self._jitter * (2.0 * self._rand() - 1.0)
        self._due = now + self._interval * factor

    def request_now(self, now: float) -> None:
        """Probe as soon as allowed."""
        earliest = now if self._last_start is None else max(now, self._last_start + self._min_gap)
        self._due = min(self._due, earliest)
