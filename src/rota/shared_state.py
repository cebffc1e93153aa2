"""Backend states shared between the supervisor and its worker processes.

One block of shared memory (a `multiprocessing.RawArray` of 64-bit integers), with a single
writer per slot, so no lock is needed:

    state[b]          1 = UP, 0 = DOWN                 written by the supervisor
    generation[b]     bumped after each state change   written by the supervisor
    failures[w][b]    passive failures seen by worker w  written by worker w
    reason[w][b]      the last failure's reason code     written by worker w

A writer stores the value and then bumps the counter; a reader that sees a new counter
reads the value after it. Aligned 8-byte stores are atomic and x86-64 keeps stores in order,
so a reader never sees a new generation with an old state.
"""

from __future__ import annotations

import ctypes
from multiprocessing.sharedctypes import RawArray
from typing import Any

from rota.pool import Pool, State

REASONS = ("connection refused", "connect timeout", "connection reset", "connection failed")


def reason_code(reason: str) -> int:
    try:
        return REASONS.index(reason)
    except ValueError:
        return len(REASONS) - 1


class SharedStates:
    __slots__ = ("array", "backends", "workers")

    def __init__(self, array: Any, backends: int, workers: int) -> None:
        self.array = array
        self.backends = backends
        self.workers = workers

    @classmethod
    def create(cls, backends: int, workers: int) -> SharedStates:
        array = RawArray(ctypes.c_int64, 2 * backends + 2 * workers * backends)
        for b in range(backends):
            array[b] = 1  # backends start UP
        return cls(array, backends, workers)

    # supervisor side

    def publish(self, index: int, up: bool) -> None:
        self.array[index] = 1 if up else 0
        self.array[self.backends + index] += 1

    def failures(self) -> list[int]:
        """Every worker's failure counters, flattened: [w * backends + b]."""
        start = 2 * self.backends
        return list(self.array[start : start + self.workers * self.backends])

    def reason(self, worker: int, index: int) -> str:
        slot = 2 * self.backends + self.workers * self.backends + worker * self.backends + index
        code = int(self.array[slot])
        return REASONS[code] if 0 <= code < len(REASONS) else REASONS[-1]

    # worker side

    def report_failure(self, worker: int, index: int, reason: str) -> None:
        base = 2 * self.backends
        self.array[base + self.workers * self.backends + worker * self.backends + index] = (
            reason_code(reason)
        )
        self.array[base + worker * self.backends + index] += 1

    def apply(self, pool: Pool, seen: list[int]) -> None:
        """Bring a worker's pool up to date with the supervisor's states. `seen` holds the
        generations already applied (start with -1s)."""
        array = self.array
        n = self.backends
        for i in range(n):
            generation = array[n + i]
            if generation != seen[i]:
                seen[i] = generation
                state = State.UP if array[i] else State.DOWN
                pool.set_state(pool.backends[i], state, "health check")
