"""HealthMonitor: checker threads with scripted probes, transitions applied on a real
asyncio loop to every pool through a Runtime, log lines, passive mark-down. No sockets."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from rota.config.load import build_config
from rota.config.model import HealthSpec
from rota.health.monitor import HealthMonitor
from rota.health.probe import ProbeResult
from rota.instance import Runtime
from rota.pool import Backend, State

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


def seed(n: int, health: dict[str, object]) -> dict[str, object]:
    return {
        "server_list": [{"host": "127.0.0.1", "port": 5001 + i} for i in range(n)],
        "health_check": health,
    }


FAST = {"interval": 0.05, "timeout": 0.05, "rise": 2, "fall": 2}


async def wait_for(pred: object, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(pred) and pred():
            return True
        await asyncio.sleep(0.005)
    return False


def lines_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "rota"]


def test_transitions_reach_the_pool_on_the_loop_thread_and_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="rota")

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        runtime = Runtime(build_config(seed(3, FAST), "t", {}), loop)
        pool = runtime.pools["default"]
        switches = {5001: Switch(), 5002: Switch(), 5003: Switch()}
        listener_threads: set[int] = set()
        pool.subscribe(lambda *_: listener_threads.add(threading.get_ident()))
        monitor = HealthMonitor(
            loop, runtime.set_health, probe_factory=lambda host, port, spec: switches[port]
        )
        monitor.sync(runtime.checks())
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
        assert lines_of(caplog) == [
            "backend 127.0.0.1:5002 DOWN (status 500; 2/3 up)",
            "backend 127.0.0.1:5002 UP (2 checks passed; 3/3 up)",
        ]
        assert listener_threads == {threading.get_ident()}

    asyncio.run(scenario())


def test_last_backend_down_logs_no_backend_available(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rota")

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        runtime = Runtime(build_config(seed(1, FAST), "t", {}), loop)
        probe = Switch(ProbeResult(False, "connection refused"))
        monitor = HealthMonitor(loop, runtime.set_health, probe_factory=lambda *_: probe)
        monitor.sync(runtime.checks())
        monitor.start()
        try:
            assert await wait_for(lambda: len(lines_of(caplog)) == 2)
        finally:
            monitor.stop()
        assert lines_of(caplog) == [
            "backend 127.0.0.1:5001 DOWN (connection refused; 0/1 up)",
            "no backend available",
        ]

    asyncio.run(scenario())


def test_observe_failure_is_immediate_and_coming_back_takes_rise_passes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="rota")

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        health = {"interval": 0.2, "timeout": 0.1, "rise": 3, "fall": 3}
        runtime = Runtime(build_config(seed(2, health), "t", {}), loop)
        probe = Switch(OK)  # the backend is healthy again by the time the checker probes
        monitor = HealthMonitor(loop, runtime.set_health, probe_factory=lambda *_: probe)
        monitor.sync(runtime.checks())
        monitor.start()
        try:
            b1: Backend = runtime.pools["default"].backends[0]
            await asyncio.sleep(0.05)
            monitor.observe_failure(b1.check, "connection refused")
            # At once, synchronously, on the loop thread: the next pick skips it.
            assert not b1.up
            assert lines_of(caplog) == ["backend 127.0.0.1:5001 DOWN (connection refused; 1/2 up)"]
            t0 = time.monotonic()
            assert await wait_for(lambda: b1.up, timeout=2.0)
            took = time.monotonic() - t0
        finally:
            monitor.stop()
        # 3 passes: the immediate probe (after the 0.02 s minimum gap) + 2 intervals.
        assert 0.3 <= took <= 0.6, took
        lines = lines_of(caplog)
        assert lines[-1] == "backend 127.0.0.1:5001 UP (3 checks passed; 2/2 up)"
        assert len(lines) == 2  # the checker's own DOWN was a no-op in the pool: no second line

    asyncio.run(scenario())


def test_a_server_in_two_pools_with_the_same_check_is_probed_once() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        config = build_config(seed(1, FAST), "t", {})
        runtime = Runtime(config, loop, log_transitions=False)
        spec = config.pools[0]
        from dataclasses import replace

        runtime.pools["other"] = runtime._build_pool(replace(spec, name="other"))
        probes: list[int] = []

        def factory(host: str, port: int, spec: HealthSpec) -> Switch:
            probes.append(port)
            return Switch(ProbeResult(False, "status 503"))

        monitor = HealthMonitor(loop, runtime.set_health, probe_factory=factory)
        monitor.sync(runtime.checks())
        monitor.start()
        try:
            both = [runtime.pools[name].backends[0] for name in ("default", "other")]
            assert await wait_for(lambda: not any(b.up for b in both))
        finally:
            monitor.stop()
        assert probes == [5001]

    asyncio.run(scenario())


def test_a_transition_after_the_loop_closed_is_dropped_quietly() -> None:
    loop = asyncio.new_event_loop()
    runtime = Runtime(
        build_config(seed(1, {"interval": 0.05, "timeout": 0.05, "fall": 1}), "t", {}), loop
    )
    probe = Switch(ProbeResult(False, "timeout"))
    monitor = HealthMonitor(loop, runtime.set_health, probe_factory=lambda *_: probe)
    monitor.sync(runtime.checks())
    loop.close()
    monitor.start()
    time.sleep(0.2)  # the checker reports DOWN into a closed loop: must not raise
    assert probe.calls >= 2  # the thread outlived the failed hand-off and kept probing
    assert monitor.stop(1.0)
    assert runtime.pools["default"].backends[0].up  # nothing applied: the loop is gone
