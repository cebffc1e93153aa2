"""Balancing algorithms: one small module each, behind the `Balancer` protocol."""

from rota.balancing.base import Balancer
from rota.balancing.round_robin import RoundRobin
from rota.pool import Pool


def make_balancer(name: str, pool: Pool) -> Balancer:
    """The balancer named in the config (validated there, so a name here always exists)."""
    factories = {"roundrobin": RoundRobin}
    return factories[name](pool)


__all__ = ["Balancer", "RoundRobin", "make_balancer"]
