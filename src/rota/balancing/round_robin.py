"""Round robin in config order, skipping backends that are down.

With backends a, b, c all up the sequence is a, b, c, a, ...; with b down it is a, c, a, c.
The cursor always moves past the backend it returns, so a backend coming back UP rejoins
at its place in the cycle rather than restarting the sequence.
"""

from __future__ import annotations

from collections.abc import Container

from rota.pool import Backend, Pool


class RoundRobin:
    __slots__ = ("_backends", "_next")

    def __init__(self, pool: Pool) -> None:
        self._backends = pool.backends
        self._next = 0

    def pick(self, exclude: Container[Backend] = ()) -> Backend | None:
        backends = self._backends
        n = len(backends)
        start = self._next
        for step in range(n):
            i = (start + step) % n
            backend = backends[i]
            if backend.up and backend not in exclude:
                self._next = (i + 1) % n
                return backend
        return None
