"""SNI passthrough: which pool a TCP connection goes to, by the server name its
ClientHello asks for (read by rota.tls.clienthello, never decrypted). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

from rota.config.model import SniRoute

P = TypeVar("P")


class SniTable(Generic[P]):
    """Exact names first, then wildcards ("*.example.com": one label in front), then
    `default` (None: close the connection)."""

    __slots__ = ("default", "exact", "wildcard")

    def __init__(
        self, routes: tuple[SniRoute, ...], pools: Mapping[str, P], default: P | None
    ) -> None:
        self.exact: dict[str, P] = {}
        self.wildcard: dict[str, P] = {}
        for route in routes:
            if route.sni.startswith("*."):
                self.wildcard[route.sni[2:]] = pools[route.pool]
            else:
                self.exact[route.sni] = pools[route.pool]
        self.default = default

    def pick(self, name: str | None) -> P | None:
        if name is None:
            return self.default
        found = self.exact.get(name)
        if found is None:
            head, dot, parent = name.partition(".")
            if head and dot:
                found = self.wildcard.get(parent)
        return found if found is not None else self.default
