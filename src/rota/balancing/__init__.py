"""Balancing policies: one small module each, behind `rota.balancing.base.Policy`."""

from collections.abc import Callable

from rota.balancing.base import Policy
from rota.balancing.custom import CustomPolicy
from rota.balancing.round_robin import RoundRobin
from rota.config.model import PoolSpec

# The built-in policies by the name a pool's `algorithm` gives (the loader stores
# `round_robin` for the seed's `roundrobin`). Each is built from its pool's spec.
POLICIES: dict[str, Callable[[PoolSpec], Policy]] = {
    "round_robin": lambda spec: RoundRobin(),
    "roundrobin": lambda spec: RoundRobin(),
}


def make_policy(spec: PoolSpec) -> Policy:
    """The policy a pool names (validated by the loader, so the name exists)."""
    if ":" in spec.algorithm:
        return CustomPolicy(spec)
    return POLICIES[spec.algorithm](spec)


__all__ = ["POLICIES", "CustomPolicy", "Policy", "RoundRobin", "make_policy"]
