"""Health checks for every server of every pool: one `Checker` per distinct check, its
transitions handed to the event loop.

A check is keyed by (host, port, health spec) (`rota.pool.CheckKey`): a server that appears
in two pools with the same check is probed once, and both pools see one health state.
Create, start and use a `HealthMonitor` on the event-loop thread. Checker threads hand their
transitions over with `loop.call_soon_threadsafe`, so `on_change` (which sets the state in
the pools, and logs) runs on the loop thread and the data path reads `backend.up` without a
lock.

Passive checks (HAProxy's `observe layer4` + `on-error mark-down`): when the data path
fails to connect to a backend (refused, reset, timed out), `observe_failure` takes it out of
rotation at once and tells its checker, so that the backend needs `rise` passed probes to
come back, and asks for a probe straight away.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping

from rota.config.model import HealthSpec
from rota.health.checker import Checker, ProbeFn
from rota.health.probe import Probe
from rota.health.state import Transition
from rota.pool import CheckKey, State

ProbeFactory = Callable[[str, int, HealthSpec], ProbeFn]
# (check, new state, reason), called on the loop thread.
OnChange = Callable[[CheckKey, State, str], None]


def _socket_probe(host: str, port: int, spec: HealthSpec) -> ProbeFn:
    return Probe(host, port, spec)


class HealthMonitor:
    __slots__ = ("_checkers", "_loop", "_on_change", "_probe_factory", "_started")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_change: OnChange,
        *,
        probe_factory: ProbeFactory = _socket_probe,
    ) -> None:
        self._loop = loop
        self._on_change = on_change
        self._probe_factory = probe_factory
        self._started = False
        self._checkers: dict[CheckKey, Checker] = {}

    def __repr__(self) -> str:
        return f"<HealthMonitor {len(self._checkers)} checkers>"

    def sync(self, checks: Mapping[CheckKey, str]) -> None:
        """Check exactly these (check -> a name for logs): new ones start (at once, if
        the monitor runs), gone ones stop. Loop thread."""
        for key in [k for k in self._checkers if k not in checks]:
            self._checkers.pop(key).stop()
        for key, name in checks.items():
            if key not in self._checkers:
                host, port, spec = key
                checker = Checker(
                    name, spec, self._probe_factory(host, port, spec), self._handoff(key)
                )
                self._checkers[key] = checker
                if self._started:
                    checker.start()

    def results(self) -> dict[CheckKey, tuple[int, int]]:
        """Probes passed and failed so far, per check (for rota_health_checks_total)."""
        return {key: (c.passed, c.failed) for key, c in self._checkers.items()}

    def start(self) -> None:
        """Start every checker (each probes at once). Loop thread."""
        if self._started:
            return
        self._started = True
        for checker in self._checkers.values():
            checker.start()

    def observe_failure(self, key: CheckKey, reason: str) -> None:
        """The data path could not talk to that server ("connection refused", "connection
        reset", "connect timeout"): DOWN at once, and probe it now. Loop thread."""
        self._on_change(key, State.DOWN, reason)
        checker = self._checkers.get(key)
        if checker is not None:
            checker.mark_down(reason)

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

    def _handoff(self, key: CheckKey) -> Callable[[Transition], None]:
        """The callback a checker thread calls: it only schedules work on the loop."""

        def on_transition(transition: Transition) -> None:
            # RuntimeError: the loop is closed, we are shutting down and nobody listens.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._apply, key, transition)

        return on_transition

    def _apply(self, key: CheckKey, transition: Transition) -> None:
        if key in self._checkers:
            self._on_change(key, transition.state, transition.reason)
