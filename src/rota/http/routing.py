"""PLACEHOLDER (lead's naive version, replaced by the routing branch)."""

from __future__ import annotations

from collections.abc import Sequence

from rota.config.model import RouteSpec
from rota.http.edits import FieldEdits, field_edits


class Route:
    __slots__ = (
        "index",
        "local",
        "local_keep_alive",
        "pool",
        "request_edits",
        "response_edits",
        "spec",
        "status",
        "strip_prefix",
    )

    def __init__(self, index: int, spec: RouteSpec) -> None:
        self.index = index
        self.spec = spec
        self.pool = spec.pool
        self.status = 0
        self.local: bytes | None = None
        self.local_keep_alive: bytes | None = None
        self.request_edits: FieldEdits | None = field_edits(
            spec.request_headers.set, spec.request_headers.remove
        )
        self.response_edits: FieldEdits | None = field_edits(
            spec.response_headers.set, spec.response_headers.remove
        )
        self.strip_prefix = spec.strip_prefix.encode() if spec.strip_prefix else None


class RouteTable:
    __slots__ = ("only", "routes")

    def __init__(self, routes: Sequence[RouteSpec]) -> None:
        self.routes = tuple(Route(i, spec) for i, spec in enumerate(routes))
        self.only: Route | None = None
        if len(self.routes) == 1 and routes[0].matches_all and routes[0].pool:
            self.only = self.routes[0]

    def match(
        self, method: bytes, target: bytes, host: bytes | None, fields: list[tuple[bytes, bytes]]
    ) -> Route | None:
        h = (host or b"").lower().decode("latin-1").rsplit(":", 1)[0]
        path = target.split(b"?", 1)[0].decode("latin-1")
        for route in self.routes:
            s = route.spec
            if s.host is not None and s.host != h:
                continue
            if s.path is not None and s.path != path:
                continue
            if s.path_prefix is not None and not path.startswith(s.path_prefix):
                continue
            return route
        return None


def rewrite_target(target: bytes, prefix: bytes) -> bytes:
    if target.startswith(prefix):
        rest = target[len(prefix) :]
        return rest if rest.startswith(b"/") else b"/" + rest
    return target
