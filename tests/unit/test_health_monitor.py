"""HealthMonitor: checker threads with scripted probes, transitions applied on a real
asyncio loop, log lines, passive mark-down. No sockets."""

from __future__ import annotations

import asyncio
import threading
import time

from rota.config.model import BackendSpec, HealthSpec
from rota.health.monitor import HealthMonitor
from rota.health.probe import ProbeResult
from rota.pool import Backend, Pool, State

OK = ProbeResult(True, "status 200")


class Switch:
    """A probe whose answer the test flips; thread-safe."""

    def __init__(self, result: ProbeResult = OK) -> None:
        self.result = result
        self.lock = threading.Lock()
        self.calls = 0

    def set(self, result: ProbeResult) -> None:
        with self.lock:
            self.result = result

    def __call__(self) -> ProbeResult:
        with self.lock:
            self.calls += 1
            return self.result


def make_pool(n: int) -> Pool:
    return Pool(
        BackendSpec(name=f"127.0.0.1:{5001 + i}", host="127.0.0.1", port=5001 + i) for i in range(n)
    )


async def wait_for(pred: object, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(pred) and pred():
            return True
        await asyncio.sleep(0.005)
    return False


SPEC = HealthSpec(interval=0.05, timeout=0.05, rise=2, fall=2)


def test_transitions_reach_the_pool_on_the_loop_thread_and_are_logged() -> None:
    async def scenario() -> None:
        pool = make_pool(3)
        switches = {5001: Switch(), 5002: Switch(), 5003: Switch()}
        lines: list[str] = []
        listener_threads: set[int] = set()
        pool.subscribe(lambda *_: listener_threads.add(threading.get_ident()))
        monitor = HealthMonitor(
            pool,
            SPEC,
            asyncio.get_running_loop(),
            log=lines.append,
            probe_factory=lambda host, port, spec: switches[port],
        )
        monitor.start()
        try:
            b2 = pool.backends[1]
            switches[5002].set(ProbeResult(False, "status 500"))
            assert await wait_for(lambda: not b2.up)
            assert b2.state is State.DOWN
            switches[5002].set(OK)
            assert await wait_for(lambda: b2.up)
        finally:
            assert monitor.stop(1.0)
        assert lines == [
            "backend 127.0.0.1:5002 DOWN (status 500; 2/3 up)",
            "backend 127.0.0.1:5002 UP (2 checks passed; 3/3 up)",
        ]
        assert listener_threads == {threading.get_ident()}

    asyncio.run(scenario())


def test_last_backend_down_logs_no_backend_available() -> None:
    async def scenario() -> None:
        pool = make_pool(1)
        probe = Switch(ProbeResult(False, "connection refused"))
        lines: list[str] = []
        monitor = HealthMonitor(
            pool, SPEC, asyncio.get_running_loop(), log=lines.append, probe_factory=lambda *_: probe
        )
        monitor.start()
        try:
            assert await wait_for(lambda: len(lines) == 2)
        finally:
            monitor.stop()
        assert lines == [
            "backend 127.0.0.1:5001 DOWN (connection refused; 0/1 up)",
            "no backend available",
        ]

    asyncio.run(scenario())


def test_observe_failure_is_immediate_and_coming_back_takes_rise_passes() -> None:
    async def scenario() -> None:
        pool = make_pool(2)
        probe = Switch(OK)  # the backend is healthy again by the time the checker probes
        spec = HealthSpec(interval=0.2, timeout=0.1, rise=3, fall=3)
        lines: list[str] = []
        monitor = HealthMonitor(
            pool, spec, asyncio.get_running_loop(), log=lines.append, probe_factory=lambda *_: probe
        )
        monitor.start()
        try:
            b1: Backend = pool.backends[0]
            await asyncio.sleep(0.05)
            monitor.observe_failure(b1, "connection refused")
            # At once, synchronously, on the loop thread: the next pick skips it.
            assert not b1.up
            assert lines == ["backend 127.0.0.1:5001 DOWN (connection refused; 1/2 up)"]
            t0 = time.monotonic()
            assert await wait_for(lambda: b1.up, timeout=2.0)
            took = time.monotonic() - t0
        finally:
            monitor.stop()
        # 3 passes: the immediate probe (after the 0.02 s minimum gap) + 2 intervals.
        assert 0.3 <= took <= 0.6, took
        assert lines[-1] == "backend 127.0.0.1:5001 UP (3 checks passed; 2/2 up)"
        assert len(lines) == 2  # the checker's own DOWN was a no-op in the pool: no second line

    asyncio.run(scenario())


def test_a_transition_after_the_loop_closed_is_dropped_quietly() -> None:
    pool = make_pool(1)
    loop = asyncio.new_event_loop()
    probe = Switch(ProbeResult(False, "timeout"))
    monitor = HealthMonitor(
        pool, HealthSpec(interval=0.05, timeout=0.05, fall=1), loop, probe_factory=lambda *_: probe
    )
    loop.close()
    monitor.start()
    time.sleep(0.2)  # the checker reports DOWN into a closed loop: must not raise
    assert probe.calls >= 2  # the thread outlived the failed hand-off and kept probing
    assert monitor.stop(1.0)
    assert pool.backends[0].up  # nothing applied: the loop is gone
