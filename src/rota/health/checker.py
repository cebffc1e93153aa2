"""A thread per backend that probes it on schedule and feeds the rise/fall machine.

Why threads, when the data plane is one event loop: a probe is a blocking call with a
timeout, so a backend that hangs costs only its own thread, and a saturated event loop
never delays a probe into a false DOWN (the seed checked health the same way).

The thread touches nothing of the event loop. It owns its `RiseFall` and `ProbeSchedule`
(no other thread reads them) and reports transitions through the `on_transition` callback,
which runs on the checker thread; the caller hands it to the loop (`HealthMonitor` does so
with `loop.call_soon_threadsafe`). Other threads talk to the checker only through
`probe_now()`, `mark_down()` and `stop()`, which set flags under a lock and wake it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from rota.config.model import HealthSpec
from rota.health.probe import ProbeResult
from rota.health.state import ProbeSchedule, RiseFall, Transition

ProbeFn = Callable[[], ProbeResult]


class Checker:
    """Checks one backend until stopped. Start with `start()`; stop with `stop()` and
    `join()` (or `HealthMonitor.stop()` for all at once)."""

    __slots__ = (
        "_clock",
        "_lock",
        "_machine",
        "_on_transition",
        "_pending_down",
        "_pending_now",
        "_probe",
        "_schedule",
        "_stop",
        "_thread",
        "_wake",
        "failed",
        "name",
        "passed",
    )

    def __init__(
        self,
        name: str,
        spec: HealthSpec,
        probe: ProbeFn,
        on_transition: Callable[[Transition], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] | None = None,
    ) -> None:
        self.name = name
        # Probes that passed and failed, ever (written by the checker thread alone).
        self.passed = 0
        self.failed = 0
        self._probe = probe
        self._on_transition = on_transition
        self._clock = clock
        self._machine = RiseFall(spec.rise, spec.fall)
        self._schedule = ProbeSchedule(
            spec.interval, clock(), rand=rand if rand is not None else random.Random().random
        )
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pending_now = False
        self._pending_down: str | None = None
        # Daemon: a checker stuck in a probe must never keep the process alive at exit.
        self._thread = threading.Thread(target=self._run, name=f"health {name}", daemon=True)

    def __repr__(self) -> str:
        alive = "running" if self._thread.is_alive() else "stopped"
        return f"<Checker {self.name} {alive} {self._machine!r}>"

    def start(self) -> None:
        self._thread.start()

    def probe_now(self) -> None:
        """Ask for a probe as soon as the schedule allows. Thread-safe, never blocks."""
        with self._lock:
            self._pending_now = True
        self._wake.set()

    def mark_down(self, reason: str) -> None:
        """A passive failure: the machine goes DOWN (or restarts its pass count) and a
        probe is asked for. Thread-safe, never blocks. The caller has already taken the
        backend out of rotation; the machine must learn of it so that coming back takes
        `rise` passes."""
        with self._lock:
            self._pending_down = reason
            self._pending_now = True
        self._wake.set()

    def stop(self) -> None:
        """Ask the thread to stop and cut short a probe in flight. Does not wait."""
        self._stop.set()
        self._wake.set()
        abort = getattr(self._probe, "abort", None)
        if callable(abort):
            abort()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; returns whether it did."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        schedule = self._schedule
        while not self._stop.is_set():
            self._take_requests()
            wait = schedule.wait(self._clock())
            if wait > 0:
                self._wake.wait(wait)
                # Clear before reading the flags (in _take_requests): a request made after
                # this clear sets the event again, so none is lost.
                self._wake.clear()
                continue
            schedule.started(self._clock())
            try:
                result = self._probe()
            except Exception as exc:
                # A bug in a probe must not end the thread: the backend would never be
                # checked again. Count it as a failure that says what happened.
                result = ProbeResult(False, f"probe error: {type(exc).__name__}")
            if self._stop.is_set():
                return
            if result.ok:
                self.passed += 1
            else:
                self.failed += 1
            self._emit(self._machine.record(result.ok, result.reason))

    def _take_requests(self) -> None:
        with self._lock:
            now, self._pending_now = self._pending_now, False
            down, self._pending_down = self._pending_down, None
        if down is not None:
            self._emit(self._machine.force_down(down))
        if now:
            self._schedule.request_now(self._clock())

    def _emit(self, transition: Transition | None) -> None:
        if transition is not None:
            self._on_transition(transition)
