"""Balancing policies: one small module each, behind `rota.balancing.base.Policy`."""

from collections.abc import Callable

from rota.balancing.base import Policy
from rota.balancing.round_robin import RoundRobin

# The policies by the name a pool's `algorithm` gives; `roundrobin` is the seed's spelling.
POLICIES: dict[str, Callable[[], Policy]] = {"round_robin": RoundRobin, "roundrobin": RoundRobin}


def make_policy(name: str) -> Policy:
    """The policy named in the config (validated there, so a name here always exists)."""
    return POLICIES[name]()


__all__ = ["POLICIES", "Policy", "RoundRobin", "make_policy"]
