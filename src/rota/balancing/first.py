"""First: the first server that is up, in config order (HAProxy's `balance first`).

Everything goes to one server until it is down (or tried, for a retry); the others stand by
in order. Useful when one server should take all the traffic and the rest are spares, or to
keep a pool's servers packed (HAProxy fills servers in order for the same reason). Weights
and slow start do not apply.
"""

from __future__ import annotations

from collections.abc import Container
from typing import TYPE_CHECKING

from rota.balancing.tiers import Tiered
from rota.pool import Backend

if TYPE_CHECKING:
    from rota.http.head import RequestHead


class First(Tiered):
    __slots__ = ()

    def __init__(self) -> None:
        super().__init__()

    def _spawn(self) -> Tiered:
        return First()

    def choose(
        self, tried: Container[Backend], head: RequestHead | None, client_ip: bytes
    ) -> Backend | None:
        for backend in self._tier:
            if backend.up and backend not in tried:
                return backend
        return None
