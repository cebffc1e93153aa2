"""Open-loop arrival times: Poisson at a rate or a schedule of rates, or a log's replay.

Each model is a generator of absolute arrival times (seconds from 0), infinite or as long
as the log; the engine takes as many as the scenario's `requests`. A Poisson process with
a piecewise-constant rate is drawn exactly: an exponential gap at the current rate, and
when it would cross the next step, a fresh draw from that step on (the exponential is
memoryless, so this is the non-homogeneous process itself, not an approximation).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from math import log

from rota.simulate.scenario import LoadSpec


def poisson(rng: random.Random, rate: float) -> Iterator[float]:
    rand = rng.random
    mean = 1.0 / rate
    now = 0.0
    while True:
        now -= log(1.0 - rand()) * mean  # rng.expovariate(rate), without its frame
        yield now


def scheduled(rng: random.Random, steps: tuple[tuple[float, float], ...]) -> Iterator[float]:
    expo = rng.expovariate
    now = 0.0
    k = 0
    while True:
        rate = steps[k][1]
        end = steps[k + 1][0] if k + 1 < len(steps) else float("inf")
        if rate <= 0 and end == float("inf"):
            return  # the last step has no arrivals: the run ends with fewer requests
        gap = expo(rate) if rate > 0 else float("inf")
        if now + gap < end:
            now += gap
            yield now
        else:
            now = end
            k += 1


def replayed(load: LoadSpec) -> Iterator[float]:
    recorded = load.recorded
    if recorded is None:
        return
    speed = load.speed
    for t in recorded.arrivals:
        yield t / speed


def arrivals(load: LoadSpec, rng: random.Random) -> Iterator[float]:
    """The open-loop arrival times of `load` (not for a closed loop)."""
    if load.kind == "replay":
        return replayed(load)
    if load.schedule:
        return scheduled(rng, load.schedule)
    return poisson(rng, load.rate)
