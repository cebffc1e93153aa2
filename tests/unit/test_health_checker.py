"""The checker thread with a scripted probe (a plain function, no sockets): schedule,
transitions, passive mark-down, probe-now, prompt stop. Intervals are tens of ms."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterable

from rota.config.model import HealthSpec
from rota.health.checker import Checker
from rota.health.probe import ProbeResult
from rota.health.state import Transition
from rota.pool import State

OK = ProbeResult(True, "status 200")
BAD = ProbeResult(False, "status 500")


class ScriptedProbe:
    """Answers from a script (then repeats the last answer); records when it was called."""

    def __init__(self, script: Iterable[ProbeResult], hang: float = 0.0) -> None:
        self.script = list(script)
        self.hang = hang
        self.calls: list[float] = []
        self.lock = threading.Lock()
        self.aborted = threading.Event()

    def __call__(self) -> ProbeResult:
        with self.lock:
            self.calls.append(time.monotonic())
            result = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if self.hang:
            self.aborted.wait(self.hang)
        return result

    def abort(self) -> None:
        self.aborted.set()

    def count(self) -> int:
        with self.lock:
            return len(self.calls)


class Recorder:
    def __init__(self) -> None:
        self.transitions: list[Transition] = []
        self.threads: set[str] = set()
        self.changed = threading.Condition()

    def __call__(self, t: Transition) -> None:
        with self.changed:
            self.transitions.append(t)
            self.threads.add(threading.current_thread().name)
            self.changed.notify_all()

    def wait_for(self, n: int, timeout: float = 2.0) -> list[Transition]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.transitions) >= n, timeout)
            return list(self.transitions)


def spec(interval: float = 0.05, rise: int = 2, fall: int = 2) -> HealthSpec:
    return HealthSpec(interval=interval, timeout=interval, rise=rise, fall=fall)


def wait_until(pred: object, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(pred) and pred():
            return True
        time.sleep(0.005)
    return False


def test_probes_at_once_then_every_interval() -> None:
    probe = ScriptedProbe([OK])
    rec = Recorder()
    c = Checker("b1", spec(interval=0.05), probe, rec)
    started = time.monotonic()
    c.start()
    try:
        assert wait_until(lambda: probe.count() >= 6)
    finally:
        c.stop()
        assert c.join(1.0)
    calls = probe.calls
    assert calls[0] - started < 0.03  # at once on start-up
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert all(0.04 <= g <= 0.08 for g in gaps), gaps  # interval +- 10% jitter, + slack
    assert rec.transitions == []  # all passing: stays UP, nothing to report


def test_fall_failures_report_down_then_rise_passes_report_up_from_the_checker_thread() -> None:
    probe = ScriptedProbe([BAD, BAD, OK, OK])
    rec = Recorder()
    c = Checker("b1", spec(), probe, rec)
    c.start()
    try:
        got = rec.wait_for(2)
    finally:
        c.stop()
        c.join(1.0)
    assert got[:2] == [
        Transition(State.DOWN, "status 500"),
        Transition(State.UP, "2 checks passed"),
    ]
    assert rec.threads == {"health b1"}


def test_mark_down_reports_down_and_probes_without_waiting_for_the_interval() -> None:
    probe = ScriptedProbe([OK])
    rec = Recorder()
    c = Checker("b1", spec(interval=5.0, rise=1), probe, rec)
    c.start()
    try:
        assert wait_until(lambda: probe.count() == 1)  # the start-up probe
        time.sleep(0.6)  # past the minimum gap (interval / 10)
        asked = time.monotonic()
        c.mark_down("connection refused")
        got = rec.wait_for(2, timeout=1.0)
    finally:
        c.stop()
        c.join(1.0)
    assert got == [
        Transition(State.DOWN, "connection refused"),
        Transition(State.UP, "1 check passed"),
    ]
    assert probe.count() == 2
    assert probe.calls[1] - asked < 0.1  # the immediate probe, not the one 5 s later


def test_probe_now_wakes_the_checker() -> None:
    probe = ScriptedProbe([OK])
    c = Checker("b1", spec(interval=5.0), probe, Recorder())
    c.start()
    try:
        assert wait_until(lambda: probe.count() == 1)
        time.sleep(0.6)
        c.probe_now()
        assert wait_until(lambda: probe.count() == 2, timeout=0.2)
    finally:
        c.stop()
        c.join(1.0)


def test_stop_is_prompt_even_while_waiting_for_a_long_interval() -> None:
    probe = ScriptedProbe([OK])
    c = Checker("b1", spec(interval=60.0), probe, Recorder())
    c.start()
    assert wait_until(lambda: probe.count() == 1)
    t0 = time.monotonic()
    c.stop()
    assert c.join(1.0)
    assert time.monotonic() - t0 < 0.1


def test_stop_aborts_a_hanging_probe_and_reports_nothing_after_stop() -> None:
    probe = ScriptedProbe([BAD], hang=30.0)
    rec = Recorder()
    c = Checker("b1", spec(interval=60.0, fall=1), probe, rec)
    c.start()
    assert wait_until(lambda: probe.count() == 1)
    t0 = time.monotonic()
    c.stop()
    assert c.join(1.0)
    assert time.monotonic() - t0 < 0.1
    assert rec.transitions == []


def test_checker_threads_are_daemons() -> None:
    probe = ScriptedProbe([OK])
    c = Checker("daemon-check", spec(), probe, Recorder())
    c.start()
    try:
        threads = [t for t in threading.enumerate() if t.name == "health daemon-check"]
        assert len(threads) == 1
        assert threads[0].daemon
    finally:
        c.stop()
        assert c.join(1.0)


def test_join_before_start_returns_at_once() -> None:
    c = Checker("b1", spec(), ScriptedProbe([OK]), Recorder())
    assert c.join(0.1)
