"""Policies of the textbooks, written as users write theirs (docs/policies.md), for the
simulator's tests against closed-form results."""

from __future__ import annotations

import random
from typing import Any


class PowerOfD:
    """Mitzenmacher's power of d choices: d servers drawn at random (with replacement, as
    in the paper's model), the one with the fewest requests in flight wins."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.d = int(options.get("d", 2))

    def pick(self, request: Any, servers: list[Any]) -> Any:
        best = None
        for _ in range(self.d):
            server = servers[int(random.random() * len(servers))]
            if best is None or server.active < best.active:
                best = server
        return best


class Broken:
    """Refuses its options: a policy that fails to load."""

    def __init__(self, options: dict[str, Any]) -> None:
        raise ValueError("no options suit me")

    def pick(self, request: Any, servers: list[Any]) -> Any:
        return servers[0]
