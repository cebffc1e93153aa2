"""Several cores: a supervisor and N worker processes (`rota lb --workers N`).

The supervisor binds every listener's sockets itself, one SO_REUSEPORT group per worker
slot (`rota.slots`), holds them, and hands each worker its slot's sockets over the control
channel (SCM_RIGHTS). The kernel spreads new connections over the slots by a hash, with no
shared accept queue (no thundering herd, no one worker taking every connection); because
the supervisor keeps every socket open, a worker that stops never takes its accept queue
with it. Balancing state (round robin order, in-flight counts) is per worker.

The supervisor runs the health checks once for everyone. It talks to each worker over a
duplex pipe, the control channel (messages in `rota.worker`). A worker whose connection to
a backend fails marks that backend DOWN locally at once and reports it; the supervisor
turns the report into a DOWN for all and an immediate probe. A worker that dies is
restarted (and told which checks are DOWN) and logged. A reload is applied here, then sent
to every worker, and done when every worker has applied it; a changed `workers` starts or
stops workers (their slots go to the others first). SIGINT/SIGTERM: the supervisor closes
its sockets, then drains every worker.

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
import os
import signal
import sys
from collections.abc import Collection
from multiprocessing.process import BaseProcess
from typing import Any

from rota.admin.service import AdminService
from rota.config.admin import read_token
from rota.config.errors import ConfigError
from rota.config.model import Config, hostport
from rota.config.reader import Reader
from rota.handover import Inherited
from rota.health.monitor import HealthMonitor
from rota.instance import Runtime, ready_line
from rota.observe.access_log import check_access_log
from rota.observe.metrics import Snapshot
from rota.pool import Admin, CheckKey, State
from rota.reloader import Reload, Reloader
from rota.runtime import loop_factory
from rota.service import EarlySignals, ProcessOptions, Service
from rota.slots import SlotError, SocketTable, close
from rota.upgrade import Predecessor
from rota.worker import Pipe, send_sockets, worker_main

log = logging.getLogger("rota")

WATCH_SECONDS = 0.05  # how often the supervisor reads its pipes and worker exits
READY_TIMEOUT = 30.0
APPLY_TIMEOUT = 10.0  # for every worker to report a reload applied
STATS_TIMEOUT = 2.0  # a worker that does not answer a scrape in this time is left out


def run_supervisor(
    config: Config,
    reload: Reload | None = None,
    options: ProcessOptions | None = None,
    predecessor: Predecessor | None = None,
    early: EarlySignals | None = None,
) -> int:
    try:
        check_access_log(config)  # each worker opens it; a bad path fails here, once
    except ConfigError as exc:
        print(f"rota: {exc}", file=sys.stderr)
        return 2
    supervisor = Supervisor(config, reload, options or ProcessOptions(), predecessor, early)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(supervisor.run())


class Supervisor:
    def __init__(
        self,
        config: Config,
        reload: Reload | None = None,
        options: ProcessOptions | None = None,
        predecessor: Predecessor | None = None,
        early: EarlySignals | None = None,
    ) -> None:
        self.config = config
        self.reload = reload
        self.options = options or ProcessOptions()
        self.predecessor = predecessor or Predecessor(None)
        self.early = early
        self.mp = multiprocessing.get_context("spawn")
        self.table = SocketTable()
        self.procs: list[BaseProcess | None] = [None] * config.workers
        self.pipes: list[Pipe | None] = [None] * config.workers
        # Stopped by a smaller `workers`, draining; their pipes close once they exited.
        self.retired: list[tuple[BaseProcess, Pipe | None]] = []
        self.down: dict[CheckKey, str] = {}  # checks that are DOWN now, with the reason
        self.stopping = False
        self.generation = 0  # of the last configuration sent to workers
        self.applied: dict[int, str | None] = {}  # worker -> its answer to `generation`
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
        with contextlib.suppress(OSError, ValueError):
            send_sockets(parent, ("sockets",), self.table.for_worker(index, len(self.procs)))

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
        self.service = service = Service(loop, self.options, self.predecessor, self.early)
        # The supervisor's own runtime holds the pools (never listeners): health states
        # and their log lines live here, once for every worker.
        self.runtime = runtime = Runtime(self.config, loop, listen=False)
        self.health = health = HealthMonitor(loop, self.on_change)
        health.sync(runtime.checks())
        service.reloader = reloader = Reloader(self.reload, self.apply)
        service.hold(self.table.held)
        service.hurry.append(self.hurry)
        try:
            async with reloader.lock:  # a reload asked for during start-up waits
                await service.begin()
                problem = self.bind(self.config, self.predecessor.inherited)
                if problem is None:
                    for i in range(self.config.workers):
                        self.start_worker(i)
                    problem = await self.wait_ready(service.stop)
                if problem is not None:
                    print(f"rota: {problem}", file=sys.stderr)
                    self.predecessor.failed(problem)
                    return 1
                if service.stop.is_set():
                    return 0
                health.start()
                problem = await self.start_admin()
                if problem is not None:
                    print(f"rota: {problem}", file=sys.stderr)
                    self.predecessor.failed(problem)
                    return 1
                workers = self.config.workers
                for listener in self.config.listeners:
                    print(ready_line(self.config, listener, listener.address, workers), flush=True)
                if self.admin is not None and self.config.admin is not None:
                    where = hostport(self.config.admin.host, self.admin.port)
                    print(f"rota admin on http://{where}/ (metrics: /metrics)", flush=True)
                # logrotate signals the supervisor: each worker reopens its own access log.
                loop.add_signal_handler(signal.SIGUSR1, self.broadcast_signal, signal.SIGUSR1)
                service.ready()
            await self.watch(service.stop)
            return 0
        finally:
            self.stopping = True
            health.stop()
            if self.admin is not None:
                await self.admin.stop()
            # Our copies first, so that once the workers close theirs (at once, as they
            # start draining) a new connection is refused; after an upgrade the new
            # process holds them and nothing is refused.
            self.table.close_all()
            await self.stop_workers()
            await service.close()

    async def start_admin(self) -> str | None:
        """The admin listener, if configured (on the socket of the process this one
        replaces, if any); returns why it could not start."""
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
            lock=self.service.reloader.lock if self.service.reloader is not None else None,
        )
        inherited = self.predecessor.inherited.take_sockets("admin", spec.host, spec.port)
        try:
            await self.admin.start(spec.host, spec.port, inherited or None)
        except OSError as exc:
            self.admin = None
            what = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            return f"cannot listen on {spec.address} (admin): {what}"
        self.service.hold(self.admin.held)
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
        problem = await self.apply(config, fresh)
        if problem is not None:
            log.error("admin change: %s", problem)
        for key in keys:
            self.health.observe_failure(key, "new server: waiting for its health check")
        for key, reason in self.down.items():
            if key in known:
                self.runtime.set_health(key, State.DOWN, reason)

    async def reload_now(self) -> str | None:
        """Read the configuration file again and apply it (POST /api/v1/reload, SIGHUP,
        `rota reload`: one coroutine, `Service.reload_now`); returns why not, when it
        cannot be."""
        return await self.service.reload_now()

    def bind(self, config: Config, inherited: Inherited) -> str | None:
        """Prepare the socket table for `config` (ports chosen with port 0 go into
        self.config); the problem if an address cannot be bound."""
        try:
            gone = self.table.prepare(config.listeners, config.workers, inherited)
        except SlotError as exc:
            return str(exc)
        listeners = tuple(
            dataclasses.replace(spec, port=self.table.port(spec.name)) for spec in config.listeners
        )
        self.config = dataclasses.replace(config, listeners=listeners)
        close(gone)  # workers hold their own descriptors while they drain those listeners
        return None

    def on_change(self, key: CheckKey, state: State, reason: str) -> None:
        """A check's verdict: into the supervisor's pools (and the log), then to workers."""
        if state is State.DOWN:
            self.down[key] = reason
        else:
            self.down.pop(key, None)
        self.runtime.set_health(key, state, reason)
        self.broadcast(("health", key, state.value, reason))

    async def apply(
        self, config: Config, start_down: Collection[tuple[str, str]] = ()
    ) -> str | None:
        """A new configuration: the socket table first (a new listener's port 0 is chosen
        here, once for every worker), the supervisor's pools, then every worker; done when
        each has applied it. A changed `workers` starts or stops workers; the admin
        listener stays as it started."""
        problem = self.bind(dataclasses.replace(config, admin=self.config.admin), Inherited())
        if problem is not None:
            return f"{problem}; the running configuration stays"
        await self.runtime.apply(self.config, start_down)
        self.health.sync(self.runtime.checks())
        before = len(self.procs)
        after = self.config.workers
        self.generation += 1
        self.applied = {}
        keep = min(before, after)
        for i in range(keep):
            message = ("apply", self.generation, self.config, tuple(start_down))
            pipe = self.pipes[i]
            if pipe is not None:
                with contextlib.suppress(OSError, ValueError):
                    send_sockets(pipe, message, self.table.for_worker(i, after))
        problems = await self.wait_applied(range(keep))
        if after > before:
            self.procs += [None] * (after - before)
            self.pipes += [None] * (after - before)
            for i in range(before, after):
                self.start_worker(i)
        elif after < before:
            # The others already serve these workers' slots (adopted with the apply).
            for i in range(after, before):
                self.retire(i)
            del self.procs[after:], self.pipes[after:]
        if after != before:
            log.info("workers: %d -> %d", before, after)
        return "; ".join(problems) if problems else None

    async def wait_applied(self, workers: range) -> list[str]:
        """Wait (bounded) until every worker in `workers` reported the last apply."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + APPLY_TIMEOUT
        while loop.time() < deadline:
            self.poll()
            if all(i in self.applied or not self.alive(i) for i in workers):
                break
            await asyncio.sleep(WATCH_SECONDS / 5)
        else:
            return ["not every worker applied the configuration in time"]
        return [p for p in self.applied.values() if p is not None]

    def alive(self, index: int) -> bool:
        proc = self.procs[index]
        return proc is not None and proc.is_alive()

    def retire(self, index: int) -> None:
        """Stop a worker no longer wanted: it drains (its pipe is closed once it exited)."""
        proc, pipe = self.procs[index], self.pipes[index]
        if proc is not None and proc.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            self.retired.append((proc, pipe))

    def hurry(self) -> None:
        """A second stop signal: every worker cuts what it still has open."""
        for proc in [*self.procs, *(r[0] for r in self.retired)]:
            if proc is not None and proc.pid is not None and proc.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)

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
        """Handle what every worker said: failure reports become passive checks; a
        restarted worker is told what is DOWN; counters and apply reports are collected."""
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
                elif kind == "applied" and payload[0] == self.generation:
                    self.applied[i] = payload[1]

    async def watch(self, stop: asyncio.Event) -> None:
        """Read the workers' messages; restart workers that die; reap retired ones."""
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
            for proc, pipe in [r for r in self.retired if not r[0].is_alive()]:
                proc.join(timeout=0)
                if pipe is not None:
                    pipe.close()
                self.retired.remove((proc, pipe))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), WATCH_SECONDS)

    async def stop_workers(self) -> None:
        procs = [p for p in [*self.procs, *(r[0] for r in self.retired)] if p is not None]
        for proc in procs:
            if proc.is_alive() and proc.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        deadline = asyncio.get_running_loop().time() + self.config.drain_timeout + 2
        while any(p.is_alive() for p in procs):
            if asyncio.get_running_loop().time() > deadline:
                for p in procs:
                    if p.is_alive():
                        p.kill()
                break
            await asyncio.sleep(0.05)
        for p in procs:
            p.join(timeout=1)
