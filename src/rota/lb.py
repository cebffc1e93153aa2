"""`rota lb` in one process: a `Runtime` with its own health checks, run as a `Service`
(signals, pid file, control socket, reload, upgrade; `rota.service`)."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys

from rota.config.errors import ConfigError
from rota.config.model import Config, ListenerSpec
from rota.health.monitor import HealthMonitor
from rota.instance import ListenError, Runtime
from rota.observe.access_log import AccessLog, start_access_log
from rota.pool import Backend
from rota.proxy.listener import bind
from rota.reloader import Reload, Reloader
from rota.runtime import loop_factory, raise_fd_limit, tune_malloc
from rota.service import EarlySignals, ProcessOptions, Service
from rota.upgrade import Predecessor

__all__ = ["Reload", "run"]


def run(
    config: Config,
    reload: Reload | None = None,
    options: ProcessOptions | None = None,
    early: EarlySignals | None = None,
) -> int:
    options = options or ProcessOptions()
    # The sockets of the process this one replaces (a binary upgrade), before any bind.
    predecessor = Predecessor.from_env()
    if config.workers > 1 or config.admin is not None:
        # The admin listener is served by a supervisor, never by a process with traffic.
        from rota.workers import run_supervisor

        return run_supervisor(config, reload, options, predecessor, early)
    raise_fd_limit()
    tune_malloc()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        try:
            runner.run(_main(config, reload, options, predecessor, early))
        except ListenError as exc:
            print(f"rota: {exc}", file=sys.stderr)
            predecessor.failed(str(exc))
            return 1
        except ConfigError as exc:  # the access log's file cannot be opened
            print(f"rota: {exc}", file=sys.stderr)
            return 2
    return 0


def observe_access(runtime: Runtime, config: Config) -> AccessLog | None:
    """The access log, when configured, as an observer of every listener; SIGUSR1 reopens
    its file (logrotate), and is harmless with the log off. A reload keeps the access log
    as it started: a new `[access_log]` takes a restart."""
    access = start_access_log(config, runtime.loop)
    if access is not None:
        runtime.observers.append(access.observe)
        runtime.describe = True
    runtime.loop.add_signal_handler(signal.SIGUSR1, access.reopen if access else _ignore)
    return access


def _ignore() -> None:
    pass


async def _main(
    config: Config,
    reload: Reload | None,
    options: ProcessOptions,
    predecessor: Predecessor,
    early: EarlySignals | None,
) -> None:
    loop = asyncio.get_running_loop()
    service = Service(loop, options, predecessor, early)
    inherited = predecessor.inherited

    def sockets(spec: ListenerSpec) -> list[socket.socket]:
        return inherited.take_sockets(spec.name, spec.host, spec.port) or bind(spec.host, spec.port)

    runtime = Runtime(config, loop, sockets=sockets)
    access = observe_access(runtime, config)
    # Checker threads start with the listeners; their transitions come back on this loop.
    health = HealthMonitor(loop, runtime.set_health)
    health.sync(runtime.checks())

    def backend_failed(backend: Backend, reason: str) -> None:
        health.observe_failure(backend.check, reason)  # passive checks

    async def apply(new: Config) -> str | None:
        try:
            await runtime.apply(new)
        except ListenError as exc:
            return f"{exc}; the other listeners run the new configuration"
        finally:
            health.sync(runtime.checks())
        return None

    runtime.on_backend_error = backend_failed
    service.reloader = reloader = Reloader(reload, apply)
    service.hold(runtime.held)
    service.hurry.append(runtime.hurry)
    try:
        async with reloader.lock:  # a reload asked for during start-up waits
            await service.begin()
            await runtime.start()
            health.start()
            for line in runtime.ready_lines():
                print(line, flush=True)
            service.ready()
        await service.stop.wait()
    finally:
        health.stop()
        await runtime.stop()
        if access is not None:
            access.close()  # every line of the drained exchanges written
        await service.close()
