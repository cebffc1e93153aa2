"""Service-time models: exponential, lognormal, constant, empirical. Pure.

Each is a plain spec (`Dist`) that binds to a seeded `random.Random` as a sampler, a
zero-argument function returning seconds, so the engine calls one bound method per
request and nothing else.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from math import log

Sampler = Callable[[], float]

KINDS = ("exponential", "lognormal", "constant", "empirical")


@dataclass(frozen=True, slots=True)
class Dist:
    """One service-time (or think-time) model, seconds.

    exponential: `mean`; lognormal: `mean` and `sigma` (of the underlying normal);
    constant: `value` (held in `mean`); empirical: recorded `values`, drawn uniformly."""

    kind: str
    mean: float
    sigma: float = 0.0
    values: tuple[float, ...] = ()

    def sampler(self, rng: random.Random) -> Sampler:
        if self.kind == "exponential":
            # random.expovariate's own formula, without its Python frame: one call fewer
            # per request, the same numbers.
            mean = self.mean
            rand = rng.random
            return lambda: -log(1.0 - rand()) * mean
        if self.kind == "lognormal":
            # E[X] = exp(mu + sigma^2 / 2): mu chosen so the mean is the one asked for.
            mu = math.log(self.mean) - self.sigma * self.sigma / 2.0
            return _bind_lognormal(rng, mu, self.sigma)
        if self.kind == "empirical":
            values = self.values
            n = len(values)
            draw = rng.random
            return lambda: values[int(draw() * n)]
        value = self.mean
        return lambda: value

    def scv(self) -> float:
        """Squared coefficient of variation (variance / mean^2), for estimates and docs."""
        if self.kind == "exponential":
            return 1.0
        if self.kind == "lognormal":
            return math.exp(self.sigma * self.sigma) - 1.0
        if self.kind == "empirical" and self.values:
            m = sum(self.values) / len(self.values)
            var = sum((v - m) ** 2 for v in self.values) / len(self.values)
            return var / (m * m) if m > 0 else 0.0
        return 0.0

    def describe(self) -> str:
        if self.kind == "exponential":
            return f"exponential, mean {self.mean:g} s"
        if self.kind == "lognormal":
            return f"lognormal, mean {self.mean:g} s, sigma {self.sigma:g}"
        if self.kind == "empirical":
            return f"empirical, {len(self.values)} values, mean {self.mean:.4g} s"
        return f"constant {self.mean:g} s"


def _bind_lognormal(rng: random.Random, mu: float, sigma: float) -> Sampler:
    draw = rng.lognormvariate
    return lambda: draw(mu, sigma)
