"""`rota lb` in one process: a `Runtime` with its own health checks."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from rota.config.model import Config
from rota.health.monitor import HealthMonitor
from rota.instance import ListenError, Runtime
from rota.pool import Backend
from rota.runtime import loop_factory, raise_fd_limit

log = logging.getLogger("rota")


def run(config: Config) -> int:
    if config.workers > 1:
        from rota.workers import run_supervisor

        return run_supervisor(config)
    raise_fd_limit()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        try:
            runner.run(_main(config))
        except ListenError as exc:
            print(f"rota: {exc}", file=sys.stderr)
            return 1
    return 0


def stop_event(loop: asyncio.AbstractEventLoop) -> asyncio.Event:
    """An event set by SIGINT or SIGTERM."""
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _main(config: Config) -> None:
    loop = asyncio.get_running_loop()
    stop = stop_event(loop)
    runtime = Runtime(config, loop)
    # Checker threads start with the listeners; their transitions come back on this loop.
    health = HealthMonitor(loop, runtime.set_health)
    health.sync(runtime.checks())

    def backend_failed(backend: Backend, reason: str) -> None:
        health.observe_failure(backend.check, reason)  # passive checks

    runtime.on_backend_error = backend_failed
    await runtime.start()
    health.start()
    try:
        for line in runtime.ready_lines():
            print(line, flush=True)
        await stop.wait()
    finally:
        health.stop()
        await runtime.stop()
