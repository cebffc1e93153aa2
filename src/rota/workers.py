"""Several cores: a supervisor and N worker processes (`rota lb --workers N`).

Each worker runs the same `Runtime` as a single-process rota, bound to every listener's
address with SO_REUSEPORT, so the kernel spreads new connections over the workers without a
shared accept queue (no thundering herd, no one worker taking every connection). Balancing
state (round robin order, in-flight counts) is therefore per worker, not across them.

The supervisor runs the health checks once for everyone. It talks to each worker over a
duplex pipe, the control channel:

    supervisor -> worker   ("health", check, "UP"|"DOWN", reason)   a check's verdict
                           ("apply", config, start_down)             a new configuration
                           ("admin", pool, server id, state)         drain, enable, disable
                           ("stats", seq)                            counters, please
    worker -> supervisor   ("ready", pid) | ("error", text)          start-up
                           ("failure", check, reason)                a passive failure
                           ("stats", seq, snapshot)                  its counters now

A worker whose connection to a backend fails marks that backend DOWN locally at once and
reports it; the supervisor turns the report into a DOWN for all and an immediate probe. A
worker that dies is restarted (and told which checks are DOWN) and logged. SIGINT/SIGTERM
stop every worker gracefully, then the supervisor.

With an `[admin]` section the supervisor also serves the admin listener (rota.admin): the
workers count their traffic, and it sums their counters; a single-process rota with an
admin listener runs as a supervisor with one worker, so that no admin request ever runs on
a process that carries traffic.

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
from collections.abc import Collection
from multiprocessing.process import BaseProcess
from typing import Any

from rota.admin.service import AdminService
from rota.config.admin import read_token
from rota.config.errors import ConfigError
from rota.config.model import Config, ListenerSpec, hostport
from rota.config.reader import Reader
from rota.health.monitor import HealthMonitor
from rota.instance import ListenError, Runtime, ready_line
from rota.lb import Reload, observe_access, on_reload, stop_event
from rota.observe.access_log import check_access_log
from rota.observe.metrics import Snapshot, Stats
from rota.pool import Admin, Backend, CheckKey, State
from rota.proxy.server import GRACE_SECONDS
from rota.runtime import loop_factory, raise_fd_limit, setup_logging

log = logging.getLogger("rota")

WATCH_SECONDS = 0.05  # how often the supervisor reads its pipes and worker exits
READY_TIMEOUT = 30.0
STATS_TIMEOUT = 2.0  # a worker that does not answer a scrape in this time is left out

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
        self.admin: AdminService | None = None
        # Scrapes in flight: seq -> replies by worker; and each worker's last snapshot.
        self.asked: dict[int, tuple[dict[int, Snapshot], asyncio.Event]] = {}
        self.seq = 0
        self.last: dict[int, Snapshot] = {}

    def start_worker(self, index: int) -> None:
        last = self.last.pop(index, None)
        if last is not None and self.admin is not None:
            self.admin.retire(last)  # a restarted worker counts from zero
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
            problem = await self.start_admin()
            if problem is not None:
                print(f"rota: {problem}", file=sys.stderr)
                return 1
            for listener in self.config.listeners:
                print(ready_line(self.config, listener, listener.address, workers), flush=True)
            if self.admin is not None and self.config.admin is not None:
                where = hostport(self.config.admin.host, self.admin.port)
                print(f"rota admin on http://{where}/ (metrics: /metrics)", flush=True)
            on_reload(loop, self.reload, self.apply)
            # logrotate signals the supervisor: each worker reopens its own access log.
            loop.add_signal_handler(signal.SIGUSR1, self.broadcast_signal, signal.SIGUSR1)
            await self.watch(stop)
            return 0
        finally:
            self.stopping = True
            health.stop()
            if self.admin is not None:
                await self.admin.stop()
            await self.stop_workers()

    async def start_admin(self) -> str | None:
        """The admin listener, if configured; returns why it could not start."""
        spec = self.config.admin
        if spec is None:
            return None
        token = None
        if spec.token_file is not None:
            try:
                token = read_token(Reader(self.config.source, {}), spec.token_file)
            except ConfigError as exc:
                return str(exc)
        self.admin = AdminService(
            self.runtime,
            ask=self.ask_stats,
            tell=self.broadcast,
            apply=self.admin_apply,
            reload=self.reload_now,
            health=self.health.results,
            workers=self.worker_pids,
            token=token,
        )
        try:
            await self.admin.start(spec.host, spec.port)
        except OSError as exc:
            self.admin = None
            what = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            return f"cannot listen on {spec.address} (admin): {what}"
        return None

    def worker_pids(self) -> list[int]:
        return [p.pid for p in self.procs if p is not None and p.pid is not None and p.is_alive()]

    async def ask_stats(self) -> list[Snapshot]:
        """Every live worker's counters, asked now (a worker that does not answer in
        STATS_TIMEOUT is left out of this one answer)."""
        self.seq += 1
        seq = self.seq
        replies: dict[int, Snapshot] = {}
        done = asyncio.Event()
        live = [i for i, p in enumerate(self.procs) if p is not None and p.is_alive()]
        self.asked[seq] = (replies, done)
        try:
            for i in live:
                self.send(i, ("stats", seq))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STATS_TIMEOUT):
                    while len(replies) < len(live):
                        self.poll()
                        if len(replies) >= len(live):
                            break
                        done.clear()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(done.wait(), WATCH_SECONDS)
        finally:
            del self.asked[seq]
        return list(replies.values())

    def stats_reply(self, index: int, seq: int, snap: Snapshot) -> None:
        self.last[index] = snap
        asked = self.asked.get(seq)
        if asked is not None:
            asked[0][index] = snap
            asked[1].set()

    async def admin_apply(self, config: Config, start_down: Collection[tuple[str, str]]) -> None:
        """A change made through the admin API. A server added with a new health check
        starts DOWN and takes traffic once its check passes; one whose check already
        runs (the same server in another pool) takes that check's state."""
        known = set(self.runtime.checks())
        fresh: list[tuple[str, str]] = []
        keys: list[CheckKey] = []
        for pool_name, server_id in start_down:
            pool = config.pool(pool_name)
            for server in pool.servers:
                key = (server.host, server.port, pool.health)
                if server.key == server_id and key not in known:
                    fresh.append((pool_name, server_id))
                    keys.append(key)
        await self.apply(config, fresh)
        for key in keys:
            self.health.observe_failure(key, "new server: waiting for its health check")
        for key, reason in self.down.items():
            if key in known:
                self.runtime.set_health(key, State.DOWN, reason)

    async def reload_now(self) -> str | None:
        """Read the configuration file again and apply it (POST /api/v1/reload); returns
        why not, when it cannot be."""
        if self.reload is None:
            return "rota was started without a configuration file to read again"
        try:
            config = self.reload()
        except ConfigError as exc:
            log.error("reload failed, the running configuration stays: %s", exc)
            return str(exc)
        await self.apply(config)
        log.info("reloaded %s", config.source)
        return None

    def on_change(self, key: CheckKey, state: State, reason: str) -> None:
        """A check's verdict: into the supervisor's pools (and the log), then to workers."""
        if state is State.DOWN:
            self.down[key] = reason
        else:
            self.down.pop(key, None)
        self.runtime.set_health(key, state, reason)
        self.broadcast(("health", key, state.value, reason))

    async def apply(self, config: Config, start_down: Collection[tuple[str, str]] = ()) -> None:
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
        self.config = dataclasses.replace(
            config, workers=self.config.workers, admin=self.config.admin
        )
        await self.runtime.apply(self.config, start_down)
        self.health.sync(self.runtime.checks())
        self.broadcast(("apply", self.config, tuple(start_down)))

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

    def poll(self) -> None:
        """Handle every message waiting on the workers' pipes."""
        for i in range(len(self.pipes)):
            for kind, payload in self.read(i):
                if kind == "failure":
                    key, reason = payload
                    self.health.observe_failure(key, str(reason))
                elif kind == "stats":
                    seq, snap = payload
                    self.stats_reply(i, int(seq), snap)
                elif kind == "ready":
                    # A restarted worker: tell it what is DOWN and what an operator set.
                    for key, reason in self.down.items():
                        self.send(i, ("health", key, State.DOWN.value, reason))
                    for pool in self.runtime.pools.values():
                        for b in pool.backends:
                            if b.admin is not Admin.ENABLED:
                                self.send(i, ("admin", pool.name, b.id, b.admin.value))

    async def watch(self, stop: asyncio.Event) -> None:
        """Turn workers' failure reports into passive checks; restart workers that die."""
        while not stop.is_set():
            self.poll()
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
    if config.admin is not None:
        runtime.count(Stats())  # counters only where someone can read them
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
                    task = loop.create_task(_apply(runtime, message[1], message[2]))
                    applying.add(task)
                    task.add_done_callback(applying.discard)
                elif message[0] == "admin":
                    _, pool_name, server_id, state = message
                    pool = runtime.pools.get(pool_name)
                    backend = pool.get(server_id) if pool is not None else None
                    if pool is not None and backend is not None:
                        pool.set_admin(backend, Admin(state))
                elif message[0] == "stats" and runtime.stats is not None:
                    pipe.send(("stats", message[1], runtime.stats.snapshot(runtime)))
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


async def _apply(runtime: Runtime, config: Config, start_down: Collection[tuple[str, str]]) -> None:
    try:
        await runtime.apply(config, start_down)
    except ListenError as exc:
        log.error(
            "worker pid %d: %s; its other listeners run the new configuration", os.getpid(), exc
        )
