"""Health checks in simulated time: rota's own rise/fall machine and probe schedule.

One `Checker` per server, as `rota.health.checker` runs one thread per backend: a probe
passes while the server is alive and fails at once when it is down (a refused connection);
`rise` passes bring it UP, `fall` failures take it DOWN (`rota.health.state.RiseFall`), on
the pool (`Pool.set_state`, so the policy hears of it and slow start begins). A request
refused or lost (`passive`) marks the server DOWN at once and brings its next probe
forward (`ProbeSchedule.request_now`), as a worker's passive check does.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from rota.health.state import ProbeSchedule, RiseFall
from rota.pool import Pool
from rota.simulate.scenario import HealthModel
from rota.simulate.servers import SimServer

# Schedules a probe: (time, checker).
Schedule = Callable[[float, "Checker"], None]


class Checker:
    """One server's health check."""

    __slots__ = ("machine", "schedule", "server")

    def __init__(self, server: SimServer, rise: int, fall: int, schedule: ProbeSchedule) -> None:
        self.server = server
        self.machine = RiseFall(rise, fall)
        self.schedule = schedule


class Health:
    """The checks of every server of one run; `push` puts a probe on the event heap."""

    __slots__ = ("checkers", "model", "pool", "push")

    def __init__(
        self,
        model: HealthModel,
        pool: Pool,
        servers: list[SimServer],
        rng: random.Random,
        push: Schedule,
    ) -> None:
        self.model = model
        self.pool = pool
        self.push = push
        self.checkers: dict[SimServer, Checker] = {}
        for server in servers:
            schedule = ProbeSchedule(model.interval, 0.0, rand=rng.random)
            checker = Checker(server, model.rise, model.fall, schedule)
            self.checkers[server] = checker
            push(schedule.due, checker)

    def probe(self, checker: Checker, now: float) -> None:
        """A probe event: its result, a transition if one is due, the next probe."""
        schedule = checker.schedule
        if now != schedule.due:
            return  # superseded by a probe brought forward
        server = checker.server
        reason = "passed" if server.alive else "connection refused"
        change = checker.machine.record(server.alive, reason)
        if change is not None and server.backend is not None:
            self.pool.set_state(server.backend, change.state, change.reason)
        schedule.started(now)
        self.push(schedule.due, checker)

    def passive(self, server: SimServer, reason: str, now: float) -> None:
        """A request to `server` was refused or lost with it."""
        checker = self.checkers.get(server)
        backend = server.backend
        if checker is None or backend is None or not self.model.passive:
            return
        if checker.machine.force_down(reason) is not None:
            self.pool.set_state(backend, checker.machine.state, reason)
        before = checker.schedule.due
        checker.schedule.request_now(now)
        if checker.schedule.due != before:
            self.push(checker.schedule.due, checker)
