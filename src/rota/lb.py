"""`rota lb` in one process: a `Runtime` with its own health checks."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable

from rota.config.errors import ConfigError
from rota.config.model import Config
from rota.health.monitor import HealthMonitor
from rota.instance import ListenError, Runtime
from rota.observe.access_log import AccessLog, start_access_log
from rota.pool import Backend
from rota.runtime import loop_factory, raise_fd_limit

log = logging.getLogger("rota")


# Reads and validates the configuration file again (SIGHUP); raises ConfigError.
Reload = Callable[[], Config]


def run(config: Config, reload: Reload | None = None) -> int:
    if config.workers > 1 or config.admin is not None:
        # The admin listener is served by a supervisor, never by a process with traffic.
        from rota.workers import run_supervisor

        return run_supervisor(config, reload)
    raise_fd_limit()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        try:
            runner.run(_main(config, reload))
        except ListenError as exc:
            print(f"rota: {exc}", file=sys.stderr)
            return 1
        except ConfigError as exc:  # the access log's file cannot be opened
            print(f"rota: {exc}", file=sys.stderr)
            return 2
    return 0


def stop_event(loop: asyncio.AbstractEventLoop) -> asyncio.Event:
    """An event set by SIGINT or SIGTERM."""
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def observe_access(runtime: Runtime, config: Config) -> AccessLog | None:
    """The access log, when configured, as an observer of every listener; SIGUSR1 reopens
    its file (logrotate), and is harmless with the log off. A reload keeps the access log
    as it started: a new `[access_log]` takes a restart."""
    access = start_access_log(config, runtime.loop)
    if access is not None:
        runtime.observers.append(access.observe)
    runtime.loop.add_signal_handler(signal.SIGUSR1, access.reopen if access else _ignore)
    return access


def _ignore() -> None:
    pass


def on_reload(
    loop: asyncio.AbstractEventLoop,
    reload: Reload | None,
    apply: Callable[[Config], object],
) -> None:
    """SIGHUP: read the file again and apply it; a bad file changes nothing (one log line
    naming the file and the field). Reloads run one at a time, in signal order."""
    if reload is None:
        return
    lock = asyncio.Lock()
    tasks: set[asyncio.Task[None]] = set()

    async def reload_once() -> None:
        async with lock:
            try:
                config = reload()
            except ConfigError as exc:
                log.error("reload failed, the running configuration stays: %s", exc)
                return
            try:
                result = apply(config)
                if asyncio.iscoroutine(result):
                    await result
            except ListenError as exc:
                log.error("reload: %s; the other listeners run the new configuration", exc)
                return
            log.info("reloaded %s", config.source)

    def hup() -> None:
        task = loop.create_task(reload_once())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    loop.add_signal_handler(signal.SIGHUP, hup)


async def _main(config: Config, reload: Reload | None) -> None:
    loop = asyncio.get_running_loop()
    stop = stop_event(loop)
    runtime = Runtime(config, loop)
    access = observe_access(runtime, config)
    # Checker threads start with the listeners; their transitions come back on this loop.
    health = HealthMonitor(loop, runtime.set_health)
    health.sync(runtime.checks())

    def backend_failed(backend: Backend, reason: str) -> None:
        health.observe_failure(backend.check, reason)  # passive checks

    async def apply(new: Config) -> None:
        await runtime.apply(new)
        health.sync(runtime.checks())

    runtime.on_backend_error = backend_failed
    await runtime.start()
    health.start()
    on_reload(loop, reload, apply)
    try:
        for line in runtime.ready_lines():
            print(line, flush=True)
        await stop.wait()
    finally:
        health.stop()
        await runtime.stop()
        if access is not None:
            access.close()  # every line of the drained exchanges written
