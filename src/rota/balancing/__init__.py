"""Balancing policies: one small module each, behind `rota.balancing.base.Policy`.

`round_robin` (smooth weighted), `least_requests`, `p2c` (peak-EWMA), `random` (weighted),
`hash` (consistent, bounded load) and `first`; backups and slow start are `tiers`.
"""

import time
from collections.abc import Callable
from random import Random

from rota.balancing.base import Policy
from rota.balancing.custom import CustomPolicy
from rota.balancing.first import First
from rota.balancing.hash import ConsistentHash
from rota.balancing.least_requests import LeastRequests
from rota.balancing.p2c import P2C
from rota.balancing.random import WeightedRandom
from rota.balancing.round_robin import RoundRobin
from rota.balancing.tiers import Tiered
from rota.config.model import PoolSpec

# The built-in policies by the name a pool's `algorithm` gives (the loader stores
# `round_robin` for the seed's `roundrobin`). Each is built from its pool's spec.
POLICIES: dict[str, Callable[[PoolSpec], Policy]] = {
    "round_robin": lambda spec: RoundRobin(spec.slow_start),
    "roundrobin": lambda spec: RoundRobin(spec.slow_start),
    "least_requests": lambda spec: LeastRequests(spec.slow_start),
    "p2c": lambda spec: P2C(spec.slow_start),
    "random": lambda spec: WeightedRandom(spec.slow_start),
    "hash": lambda spec: ConsistentHash(spec.hash_key, spec.hash_balance_factor),
    "first": lambda spec: First(),
}


def make_policy(
    spec: PoolSpec,
    clock: Callable[[], float] | None = None,
    rng: Random | None = None,
) -> Policy:
    """The policy a pool names (validated by the loader, so the name exists).

    `clock` and `rng` replace the policy's time source and random draws: `rota simulate`
    runs the same classes on simulated time, seeded. The proxy passes neither."""
    if ":" in spec.algorithm:
        return CustomPolicy(spec, clock if clock is not None else time.monotonic)
    policy = POLICIES[spec.algorithm](spec)
    # Before the pool's first `update`, so a backup tier's twin inherits both.
    if clock is not None and isinstance(policy, Tiered):
        policy.clock = clock
    if rng is not None and isinstance(policy, P2C | WeightedRandom):
        policy.rng = rng
    return policy


__all__ = [
    "P2C",
    "POLICIES",
    "ConsistentHash",
    "CustomPolicy",
    "First",
    "LeastRequests",
    "Policy",
    "RoundRobin",
    "WeightedRandom",
    "make_policy",
]
