"""Several cores: a supervisor and N worker processes (`rota lb --workers N`).

Each worker is a whole data plane (its own event loop, pool, connection pools) bound to the
same address with SO_REUSEPORT, so the kernel spreads new connections over the workers
without a shared accept queue (no thundering herd, no one worker taking every connection).
Round robin order is therefore kept per worker, not across them.

The supervisor runs the health checks once for everyone and publishes backend states
through shared memory (`rota.shared_state`); workers poll it every 100 ms. A worker whose
connection to a backend fails marks that backend DOWN locally at once and reports it; the
supervisor turns the report into a DOWN for all and an immediate probe. A worker that dies
is restarted and logged. SIGINT/SIGTERM stop every worker gracefully, then the supervisor.

Workers are started with the `spawn` method: the supervisor runs health-check threads, and
forking a process that has threads can copy a held lock into the child.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
from multiprocessing.process import BaseProcess
from typing import Any

from rota.config.model import Config
from rota.health.monitor import HealthMonitor
from rota.pool import Backend, Pool, State
from rota.proxy.context import ProxyContext
from rota.proxy.server import GRACE_SECONDS, serve_http
from rota.runtime import loop_factory, raise_fd_limit, setup_logging
from rota.shared_state import SharedStates

log = logging.getLogger("rota")

SYNC_SECONDS = 0.1  # how often a worker reads the shared states
WATCH_SECONDS = 0.05  # how often the supervisor reads failure reports and worker exits
READY_TIMEOUT = 30.0


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_bindable(config: Config) -> str | None:
    """Fail fast, before any worker starts, if the address cannot be bound."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # Without SO_REUSEPORT, so that any listener on the port, another rota's workers
        # included, makes this fail instead of silently sharing the port with it.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((config.host, config.port))
        except OSError as exc:
            what = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            return f"cannot listen on {hostport(config.host, config.port)}: {what}"
    return None


# ---------------------------------------------------------------------------- supervisor


def run_supervisor(config: Config) -> int:
    problem = check_bindable(config)
    if problem is not None:
        print(f"rota: {problem}", file=sys.stderr)
        return 1
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(Supervisor(config).run())


class Supervisor:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.shared = SharedStates.create(len(config.backends), config.workers)
        self.mp = multiprocessing.get_context("spawn")
        self.procs: list[BaseProcess | None] = [None] * config.workers
        self.pipes: list[multiprocessing.connection.Connection | None] = [None] * config.workers
        self.stopping = False

    def start_worker(self, index: int) -> None:
        parent, child = self.mp.Pipe(duplex=False)
        proc = self.mp.Process(
            target=worker_main,
            args=(self.config, self.shared.array, index, child),
            name=f"rota-worker-{index}",
            daemon=True,
        )
        proc.start()
        child.close()
        self.procs[index] = proc
        self.pipes[index] = parent

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        config = self.config
        pool = Pool(config.backends)
        pool.subscribe(lambda b, old, new, why: self.shared.publish(b.index, new is State.UP))
        health = HealthMonitor(pool, config.health, loop, log=log.info)
        for i in range(config.workers):
            self.start_worker(i)
        try:
            problem = await self.wait_ready(stop)
            if problem is not None:
                print(f"rota: {problem}", file=sys.stderr)
                return 1
            if stop.is_set():
                return 0
            health.start()
            print(
                f"rota listening on http://{hostport(config.host, config.port)} "
                f"({len(pool)} backends, {config.workers} workers)",
                flush=True,
            )
            await self.watch(pool, health, stop)
            return 0
        finally:
            self.stopping = True
            health.stop()
            await self.stop_workers()

    async def wait_ready(self, stop: asyncio.Event) -> str | None:
        """Wait until every worker listens; a worker's start-up error ends the wait."""
        waiting = set(range(self.config.workers))
        deadline = asyncio.get_running_loop().time() + READY_TIMEOUT
        while waiting and not stop.is_set():
            for i in list(waiting):
                message = self.read(i)
                if message is None:
                    proc = self.procs[i]
                    if proc is not None and not proc.is_alive():
                        return f"worker {i} exited with code {proc.exitcode} while starting"
                    continue
                kind, text = message
                if kind == "error":
                    return str(text)
                waiting.discard(i)
            if asyncio.get_running_loop().time() > deadline:
                return "workers did not start in time"
            await asyncio.sleep(WATCH_SECONDS)
        return None

    def read(self, index: int) -> tuple[str, Any] | None:
        pipe = self.pipes[index]
        try:
            if pipe is not None and pipe.poll():
                kind, payload = pipe.recv()
                return str(kind), payload
        except (EOFError, OSError):
            return None
        return None

    async def watch(self, pool: Pool, health: HealthMonitor, stop: asyncio.Event) -> None:
        """Turn workers' failure reports into passive checks; restart workers that die."""
        seen = self.shared.failures()
        n = len(pool)
        while not stop.is_set():
            failures = self.shared.failures()
            if failures != seen:
                for slot, (old, new) in enumerate(zip(seen, failures, strict=True)):
                    if new != old:
                        worker, index = divmod(slot, n)
                        backend: Backend = pool.backends[index]
                        health.observe_failure(backend, self.shared.reason(worker, index))
                seen = failures
            for i, proc in enumerate(self.procs):
                if proc is not None and not proc.is_alive() and not self.stopping:
                    log.warning(
                        "worker %d (pid %s) exited with code %s; restarting",
                        i,
                        proc.pid,
                        proc.exitcode,
                    )
                    self.start_worker(i)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), WATCH_SECONDS)

    async def stop_workers(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.is_alive() and proc.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        deadline = asyncio.get_running_loop().time() + GRACE_SECONDS + 2
        while any(p is not None and p.is_alive() for p in self.procs):
            if asyncio.get_running_loop().time() > deadline:
                for p in self.procs:
                    if p is not None and p.is_alive():
                        p.kill()
                break
            await asyncio.sleep(0.05)
        for p in self.procs:
            if p is not None:
                p.join(timeout=1)


# ---------------------------------------------------------------------------- worker


def worker_main(
    config: Config, array: Any, index: int, pipe: multiprocessing.connection.Connection
) -> None:
    """A worker process: one data plane, listening with SO_REUSEPORT."""
    setup_logging()
    raise_fd_limit()
    shared = SharedStates(array, len(config.backends), config.workers)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        try:
            runner.run(_worker(config, shared, index, pipe))
        except OSError as exc:
            what = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            with contextlib.suppress(OSError):
                pipe.send(
                    ("error", f"cannot listen on {hostport(config.host, config.port)}: {what}")
                )
            sys.exit(1)


async def _worker(
    config: Config, shared: SharedStates, index: int, pipe: multiprocessing.connection.Connection
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    pool = Pool(config.backends)
    seen = [-1] * len(pool)
    shared.apply(pool, seen)

    def backend_failed(backend: Backend, reason: str) -> None:
        pool.set_state(backend, State.DOWN, reason)  # at once, here; the supervisor follows
        shared.report_failure(index, backend.index, reason)

    def ready(ctx: ProxyContext, server: asyncio.Server) -> None:
        ctx.on_backend_error = backend_failed
        pipe.send(("ready", os.getpid()))

    async def sync() -> None:
        while True:
            await asyncio.sleep(SYNC_SECONDS)
            shared.apply(pool, seen)

    syncer = loop.create_task(sync())
    try:
        await serve_http(config, pool, stop, reuse_port=True, on_ready=ready)
    finally:
        syncer.cancel()
