"""A balancing policy of your own: prefer servers in the client's zone.

The client (or an edge proxy in front of rota) says where it is in a header, `x-zone: eu`;
each server's zone is given in the pool's `options`. A request goes to the least loaded
server of its zone, and to the least loaded server of any zone when its zone has none up
(or it names no zone). "Least loaded" is requests in flight divided by weight, as rota's
`least_requests`; ties are broken in turn, so idle servers share the traffic.

Used by examples/custom-policy.toml:

    [pools.api]
    algorithm = "zone_policy:ZonePolicy"
    options = { header = "x-zone", zones = { "api-eu-1" = "eu", "api-us-1" = "us" } }

rota imports it from the working directory or PYTHONPATH (docs/policies.md):

    PYTHONPATH=examples rota check-config examples/custom-policy.toml
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class Server(Protocol):
    name: str
    weight: int
    active: int


class ZonePolicy:
    def __init__(self, options: dict[str, object]) -> None:
        # Checked here, so `rota check-config` reports a mistake in the options.
        header = options.get("header", "x-zone")
        zones = options.get("zones", {})
        if not isinstance(header, str) or not header:
            raise ValueError(f"header: expected a header name, got {header!r}")
        if not isinstance(zones, Mapping) or not all(isinstance(z, str) for z in zones.values()):
            raise ValueError('zones: expected a table of server name = "zone"')
        self.header = header.lower()
        self.zones: dict[str, str] = dict(zones)
        self.turn = 0

    def pick(self, request: Any, servers: Sequence[Server]) -> Server | None:
        zone = request.headers.get(self.header)
        if zone is not None:
            local = [s for s in servers if self.zones.get(s.name) == zone]
            if local:
                return self.least_loaded(local)
        return self.least_loaded(servers)

    def least_loaded(self, servers: Sequence[Server]) -> Server:
        # Start the scan one further each time: among equals, each gets its turn.
        self.turn += 1
        n = len(servers)
        best = servers[self.turn % n]
        for i in range(1, n):
            server = servers[(self.turn + i) % n]
            if server.active * best.weight < best.active * server.weight:
                best = server
        return best
