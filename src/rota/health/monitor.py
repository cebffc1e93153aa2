"""Health checks for a whole pool: one `Checker` per backend, transitions applied on the loop.

Create, start and use a `HealthMonitor` on the event-loop thread. Checker threads hand
their transitions over with `loop.call_soon_threadsafe`, so `Pool.set_state` (and every
pool listener, the log line among them) runs on the loop thread and the data path reads
`backend.up` without a lock.

Passive checks (HAProxy's `observe layer4` + `on-error mark-down`): when the data path
fails to connect to a backend (refused, reset, timed out) it calls `observe_failure`, which
takes the backend out of rotation at once and tells its checker, so that the backend needs
`rise` passed probes to come back, and asks for a probe straight away.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from rota.config.model import HealthSpec
from rota.health.checker import Checker, ProbeFn
from rota.health.probe import Probe
from rota.health.report import transition_lines
from rota.health.state import Transition
from rota.pool import Backend, Pool, State

ProbeFactory = Callable[[str, int, HealthSpec], ProbeFn]


def _socket_probe(host: str, port: int, spec: HealthSpec) -> ProbeFn:
    return Probe(host, port, spec)


class HealthMonitor:
    __slots__ = ("_checkers", "_log", "_loop", "_pool", "_started")

    def __init__(
        self,
        pool: Pool,
        spec: HealthSpec,
        loop: asyncio.AbstractEventLoop,
        *,
        log: Callable[[str], None] | None = None,
        probe_factory: ProbeFactory = _socket_probe,
    ) -> None:
        self._pool = pool
        self._loop = loop
        self._log = log
        self._started = False
        self._checkers: dict[int, Checker] = {
            backend.index: Checker(
                backend.name,
                spec,
                probe_factory(backend.host, backend.port, spec),
                self._handoff(backend),
            )
            for backend in pool.backends
        }

    def __repr__(self) -> str:
        return f"<HealthMonitor {len(self._checkers)} checkers {self._pool!r}>"

    def start(self) -> None:
        """Log transitions and start every checker (each probes at once). Loop thread."""
        if self._started:
            return
        self._started = True
        if self._log is not None:
            self._pool.subscribe(self._log_transition)
        for checker in self._checkers.values():
            checker.start()

    def observe_failure(self, backend: Backend, reason: str) -> None:
        """The data path could not talk to `backend` ("connection refused", "connection
        reset", "connect timeout"): DOWN at once, and probe it now. Loop thread."""
        self._pool.set_state(backend, State.DOWN, reason)
        checker = self._checkers.get(backend.index)
        if checker is not None:
            checker.mark_down(reason)

    def probe_now(self, backend: Backend) -> None:
        checker = self._checkers.get(backend.index)
        if checker is not None:
            checker.probe_now()

    def stop(self, timeout: float = 1.0) -> bool:
        """Stop every checker and wait up to `timeout` in all; returns whether all ended.
        Threads still stuck (in a connect) are daemons and do not hold up exit."""
        for checker in self._checkers.values():
            checker.stop()
        deadline = time.monotonic() + timeout
        done = True
        for checker in self._checkers.values():
            done = checker.join(max(0.0, deadline - time.monotonic())) and done
        return done

    def _handoff(self, backend: Backend) -> Callable[[Transition], None]:
        """The callback a checker thread calls: it only schedules work on the loop."""

        def on_transition(transition: Transition) -> None:
            # RuntimeError: the loop is closed, we are shutting down and nobody listens.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._apply, backend, transition)

        return on_transition

    def _apply(self, backend: Backend, transition: Transition) -> None:
        self._pool.set_state(backend, transition.state, transition.reason)

    def _log_transition(self, backend: Backend, old: State, new: State, reason: str) -> None:
        if self._log is None:
            return
        pool = self._pool
        for line in transition_lines(
            backend.name, backend.address, new, reason, pool.up_count(), len(pool)
        ):
            self._log(line)
