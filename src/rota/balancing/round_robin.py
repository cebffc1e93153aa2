"""Round robin in config order, skipping backends that are down.

With backends a, b, c all up the sequence is a, b, c, a, ...; with b down it is a, c, a, c.
The cursor always moves past the backend it returns, so a backend coming back UP rejoins
at its place in the cycle rather than restarting the sequence.
"""

from __future__ import annotations

from collections.abc import Container
from typing import TYPE_CHECKING

from rota.balancing.base import Policy
from rota.pool import Backend

if TYPE_CHECKING:
    from rota.http.rules import RequestHead


class RoundRobin(Policy):
    __slots__ = ("_backends", "_next")

    def __init__(self) -> None:
        self._backends: tuple[Backend, ...] = ()
        self._next = 0

    def update(self, backends: tuple[Backend, ...]) -> None:
        self._backends = backends
        if self._next >= len(backends):
            self._next = 0

    def pick(
        self, tried: Container[Backend], head: RequestHead | None, client_ip: bytes
    ) -> Backend | None:
        backends = self._backends
        n = len(backends)
        start = self._next
        for step in range(n):
            i = (start + step) % n
            backend = backends[i]
            if backend.up and backend not in tried:
                self._next = (i + 1) % n
                return backend
        return None
