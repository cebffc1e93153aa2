"""Several cores: a supervisor and N worker processes (`rota lb --workers N`).

Each worker runs the same `Runtime` as a single-process rota, bound to every listener's
address with SO_REUSEPORT, so the kernel spreads new connections over the workers without a
shared accept queue (no thundering herd, no one worker taking every connection). Balancing
state (round robin order, in-flight counts) is therefore per worker, not across them.

The supervisor runs the health checks once for everyone. It talks to each worker over a
duplex pipe, the control channel:

    supervisor -> worker   ("health", check, "UP"|"DOWN", reason)   a check's verdict
                           ("apply", config)                         a new configuration
    worker -> supervisor   ("ready", pid) | ("error", text)          start-up
                           ("failure", check, reason)                a passive failure

A worker whose connection to a backend fails marks that backend DOWN locally at once and
reports it; the supervisor turns the report into a DOWN for all and an immediate probe. A
worker that dies is restarted (and told which checks are DOWN) and logged. SIGINT/SIGTERM
stop every worker gracefully, then the supervisor.

Workers are started with the `spawn` method: the supervisor runs health-check threads, and
forking a process that has threads can copy a held lock into the child.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
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

from rota.config.errors import ConfigError
from rota.config.model import Config, ListenerSpec
from rota.health.monitor import HealthMonitor
from rota.instance import ListenError, Runtime, ready_line
from rota.lb import Reload, observe_access, on_reload, stop_event
from rota.observe.access_log import check_access_log
from rota.pool import Backend, CheckKey, State
from rota.proxy.server import GRACE_SECONDS
from rota.runtime import loop_factory, raise_fd_limit, setup_logging

log = logging.getLogger("rota")

WATCH_SECONDS = 0.05  # how often the supervisor reads its pipes and worker exits
READY_TIMEOUT = 30.0

Pipe = multiprocessing.connection.Connection


def check_bindable(listener: ListenerSpec) -> tuple[int, str | None]:
    """Fail fast, before any worker starts, if the address cannot be bound. Returns the
    port to use: with port 0 the kernel picks one here, and every worker takes that one."""
    family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # Without SO_REUSEPORT, so that any listener on the port, another rota's workers
        # included, makes this fail instead of silently sharing the port with it.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((listener.host, listener.port))
        except OSError as exc:
            what = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            return listener.port, f"cannot listen on {listener.address}: {what}"
        return int(s.getsockname()[1]), None


# ---------------------------------------------------------------------------- supervisor


def run_supervisor(config: Config, reload: Reload | None = None) -> int:
    try:
        check_access_log(config)  # each worker opens it; a bad path fails here, once
    except ConfigError as exc:
        print(f"rota: {exc}", file=sys.stderr)
        return 2
    listeners = []
    for listener in config.listeners:
        port, problem = check_bindable(listener)
        if problem is not None:
            print(f"rota: {problem}", file=sys.stderr)
            return 1
        listeners.append(dataclasses.replace(listener, port=port))
    config = dataclasses.replace(config, listeners=tuple(listeners))
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(Supervisor(config, reload).run())


class Supervisor:
    def __init__(self, config: Config, reload: Reload | None = None) -> None:
        self.config = config
        self.reload = reload
        self.mp = multiprocessing.get_context("spawn")
        self.procs: list[BaseProcess | None] = [None] * config.workers
        self.pipes: list[Pipe | None] = [None] * config.workers
        self.down: dict[CheckKey, str] = {}  # checks that are DOWN now, with the reason
        self.stopping = False

    def start_worker(self, index: int) -> None:
        parent, child = self.mp.Pipe(duplex=True)
        proc = self.mp.Process(
            target=worker_main,
            args=(self.config, index, child),
            name=f"rota-worker-{index}",
            daemon=True,
        )
        proc.start()
        child.close()
        self.procs[index] = proc
        self.pipes[index] = parent

    def send(self, index: int, message: tuple[Any, ...]) -> None:
        pipe = self.pipes[index]
        if pipe is not None:
            with contextlib.suppress(OSError, ValueError):
                pipe.send(message)

    def broadcast_signal(self, sig: int) -> None:
        for proc in self.procs:
            if proc is not None and proc.is_alive() and proc.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, sig)

    def broadcast(self, message: tuple[Any, ...]) -> None:
        for i in range(len(self.pipes)):
            self.send(i, message)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stop = stop_event(loop)
        # The supervisor's own runtime holds the pools (never listeners): health states
        # and their log lines live here, once for every worker.
        self.runtime = runtime = Runtime(self.config, loop, listen=False)
        self.health = health = HealthMonitor(loop, self.on_change)
        health.sync(runtime.checks())
        workers = self.config.workers
        for i in range(workers):
            self.start_worker(i)
        try:
            problem = await self.wait_ready(stop)
            if problem is not None:
                print(f"rota: {problem}", file=sys.stderr)
                return 1
            if stop.is_set():
                return 0
            health.start()
            for listener in self.config.listeners:
                print(ready_line(self.config, listener, listener.address, workers), flush=True)
            on_reload(loop, self.reload, self.apply)
            # logrotate signals the supervisor: each worker reopens its own access log.
            loop.add_signal_handler(signal.SIGUSR1, self.broadcast_signal, signal.SIGUSR1)
            await self.watch(stop)
            return 0
        finally:
            self.stopping = True
            health.stop()
            await self.stop_workers()

    def on_change(self, key: CheckKey, state: State, reason: str) -> None:
        """A check's verdict: into the supervisor's pools (and the log), then to workers."""
        if state is State.DOWN:
            self.down[key] = reason
        else:
            self.down.pop(key, None)
        self.runtime.set_health(key, state, reason)
        self.broadcast(("health", key, state.value, reason))

    async def apply(self, config: Config) -> None:
        """A new configuration for every worker (the control channel's `apply`). Every
        worker must bind a new listener's port 0 to the same port: it is chosen here, and
        a listener that stays keeps the port it has."""
        old = {listener.name: listener for listener in self.config.listeners}
        listeners = []
        for listener in config.listeners:
            before = old.get(listener.name)
            if listener.port == 0 and before is not None and before.host == listener.host:
                listener = dataclasses.replace(listener, port=before.port)
            elif before is None or (before.host, before.port) != (listener.host, listener.port):
                port, problem = check_bindable(listener)
                if problem is not None:
                    log.error("reload failed, the running configuration stays: %s", problem)
                    return
                listener = dataclasses.replace(listener, port=port)
            listeners.append(listener)
        config = dataclasses.replace(config, listeners=tuple(listeners))
        self.config = dataclasses.replace(config, workers=self.config.workers)
        await self.runtime.apply(self.config)
        self.health.sync(self.runtime.checks())
        self.broadcast(("apply", self.config))

    async def wait_ready(self, stop: asyncio.Event) -> str | None:
        """Wait until every worker listens; a worker's start-up error ends the wait."""
        waiting = set(range(self.config.workers))
        deadline = asyncio.get_running_loop().time() + READY_TIMEOUT
        while waiting and not stop.is_set():
            for i in list(waiting):
                for kind, payload in self.read(i):
                    if kind == "error":
                        return str(payload[0])
                    if kind == "ready":
                        waiting.discard(i)
                proc = self.procs[i]
                if i in waiting and proc is not None and not proc.is_alive():
                    return f"worker {i} exited with code {proc.exitcode} while starting"
            if asyncio.get_running_loop().time() > deadline:
                return "workers did not start in time"
            await asyncio.sleep(WATCH_SECONDS)
        return None

    def read(self, index: int) -> list[tuple[str, tuple[Any, ...]]]:
        """Every message waiting on one worker's pipe."""
        pipe = self.pipes[index]
        messages: list[tuple[str, tuple[Any, ...]]] = []
        try:
            while pipe is not None and pipe.poll():
                message = pipe.recv()
                messages.append((str(message[0]), tuple(message[1:])))
        except (EOFError, OSError):
            pass
        return messages

    async def watch(self, stop: asyncio.Event) -> None:
        """Turn workers' failure reports into passive checks; restart workers that die."""
        while not stop.is_set():
            for i in range(len(self.pipes)):
                for kind, payload in self.read(i):
                    if kind == "failure":
                        key, reason = payload
                        self.health.observe_failure(key, str(reason))
                    elif kind == "ready":
                        # A restarted worker: tell it what is DOWN now.
                        for key, reason in self.down.items():
                            self.send(i, ("health", key, State.DOWN.value, reason))
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


def worker_main(config: Config, index: int, pipe: Pipe) -> None:
    """A worker process: one `Runtime`, listening with SO_REUSEPORT."""
    setup_logging()
    raise_fd_limit()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        try:
            runner.run(_worker(config, pipe))
        except (ListenError, ConfigError) as exc:
            with contextlib.suppress(OSError):
                pipe.send(("error", str(exc)))
            sys.exit(1)


async def _worker(config: Config, pipe: Pipe) -> None:
    loop = asyncio.get_running_loop()
    stop = stop_event(loop)
    runtime = Runtime(config, loop, reuse_port=True, log_transitions=False)
    access = observe_access(runtime, config)
    applying: set[asyncio.Task[None]] = set()

    def backend_failed(backend: Backend, reason: str) -> None:
        # At once, here; the supervisor follows for every worker.
        runtime.set_health(backend.check, State.DOWN, reason)
        with contextlib.suppress(OSError, ValueError):
            pipe.send(("failure", backend.check, reason))

    def on_message() -> None:
        try:
            while pipe.poll():
                message = pipe.recv()
                if message[0] == "health":
                    _, key, state, reason = message
                    runtime.set_health(key, State(state), reason)
                elif message[0] == "apply":
                    task = loop.create_task(_apply(runtime, message[1]))
                    applying.add(task)
                    task.add_done_callback(applying.discard)
        except (EOFError, OSError):
            loop.remove_reader(pipe.fileno())
            stop.set()  # the supervisor is gone: so are we

    runtime.on_backend_error = backend_failed
    await runtime.start()
    loop.add_reader(pipe.fileno(), on_message)
    pipe.send(("ready", os.getpid()))
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(pipe.fileno())
        await runtime.stop()
        if access is not None:
            access.close()


async def _apply(runtime: Runtime, config: Config) -> None:
    try:
        await runtime.apply(config)
    except ListenError as exc:
        log.error(
            "worker pid %d: %s; its other listeners run the new configuration", os.getpid(), exc
        )
