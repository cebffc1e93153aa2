"""`rota backend --service-time DIST --concurrency N`: a server that behaves like a model.

A request to the default route is served in a time drawn from DIST, with at most N served
at once and the others waiting first come, first served: the server `rota simulate`
models, made real so `rota simulate --real` can compare the two. DIST is written
`exponential:MEAN`, `lognormal:MEAN:SIGMA` or `constant:SECONDS` (seconds).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from collections.abc import Callable

FORMS = "exponential:MEAN, lognormal:MEAN:SIGMA or constant:SECONDS"


def parse_service(text: str, rng: random.Random | None = None) -> Callable[[], float]:
    """A sampler of service times for `text`; ValueError saying what is wrong."""
    draw = rng if rng is not None else random.Random()
    kind, _, rest = text.partition(":")
    try:
        numbers = [float(part) for part in rest.split(":")] if rest else []
    except ValueError:
        raise ValueError(f"expected {FORMS}, got {text!r}") from None
    if any(not math.isfinite(n) or n < 0 for n in numbers):
        raise ValueError(f"expected numbers >= 0 in {text!r}")
    if kind == "constant" and len(numbers) == 1:
        value = numbers[0]
        return lambda: value
    if kind == "exponential" and len(numbers) == 1 and numbers[0] > 0:
        rate = 1.0 / numbers[0]
        return lambda: draw.expovariate(rate)
    if kind == "lognormal" and len(numbers) == 2 and numbers[0] > 0:
        mean, sigma = numbers
        mu = math.log(mean) - sigma * sigma / 2.0
        return lambda: draw.lognormvariate(mu, sigma)
    raise ValueError(f"expected {FORMS}, got {text!r}")


class Slots:
    """At most `limit` answers in preparation at once (0: no limit); the rest wait in order."""

    __slots__ = ("busy", "draw", "limit", "waiting")

    def __init__(self, draw: Callable[[], float], limit: int) -> None:
        self.draw = draw
        self.limit = limit
        self.busy = 0
        self.waiting: deque[Callable[[], None]] = deque()

    def admit(self, answer: Callable[[], None]) -> None:
        """Call `answer` once the request has had a slot for its service time."""
        if self.limit and self.busy >= self.limit:
            self.waiting.append(answer)
            return
        self._start(answer)

    def _start(self, answer: Callable[[], None]) -> None:
        self.busy += 1
        asyncio.get_running_loop().call_later(self.draw(), self._done, answer)

    def _done(self, answer: Callable[[], None]) -> None:
        self.busy -= 1
        answer()
        if self.waiting:
            self._start(self.waiting.popleft())
