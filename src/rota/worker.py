"""One `--workers` worker process: a `Runtime` on the sockets its supervisor hands it.

Control channel messages it reads (a duplex pipe; sockets follow a message as SCM_RIGHTS,
`send_sockets`):

    ("sockets",) + sockets            at start: the slots this worker accepts on
    ("apply", gen, config, start_down) + sockets
                                      a new configuration and this worker's slots under it
    ("health", check, state, reason)  a check's verdict
    ("admin", pool, server id, state) drain, enable, disable (the admin API)
    ("stats", seq)                    counters, please

and writes ("ready", pid) or ("error", text) once, ("applied", gen, problem) after each
apply, ("failure", check, reason) for a passive failure, ("stats", seq, snapshot) its
counters now.

Signals: the supervisor stops a worker with SIGTERM (drain; a second one cuts at once).
SIGINT, SIGHUP and SIGUSR2 are the supervisor's business: a worker ignores them (a Ctrl-C
reaches every process of the terminal's group, and the supervisor drains them in order).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing.connection
import os
import signal
import socket
import sys
from collections.abc import Collection

from rota.config.errors import ConfigError
from rota.config.model import Config, ListenerSpec
from rota.handover import Held, Inherited, recv_held, send_held
from rota.instance import ListenError, Runtime
from rota.lb import observe_access
from rota.observe.metrics import Stats
from rota.pool import Admin, Backend, State
from rota.runtime import loop_factory, raise_fd_limit, setup_logging, tune_malloc

log = logging.getLogger("rota")

Pipe = multiprocessing.connection.Connection


def send_sockets(pipe: Pipe, message: tuple[object, ...], held: list[Held]) -> None:
    """`message`, then `held`'s sockets on the same pipe (a Unix socket pair)."""
    pipe.send(message)
    with socket.socket(fileno=os.dup(pipe.fileno())) as link:
        link.setblocking(True)
        send_held(link, held)


def recv_sockets(pipe: Pipe) -> list[Held]:
    with socket.socket(fileno=os.dup(pipe.fileno())) as link:
        link.setblocking(True)
        return recv_held(link)


def _key(held: Held) -> tuple[str, str, int, int]:
    return (held.name, held.host, held.port, held.slot)


class Slots:
    """The sockets this worker was given, and which of them it serves."""

    def __init__(self) -> None:
        self.given = Inherited()
        self.served: set[tuple[str, str, int, int]] = set()

    def source(self, spec: ListenerSpec) -> list[socket.socket]:
        taken = self.given.take(spec.name, spec.host, spec.port)
        if not taken:
            raise OSError(0, "no socket from the supervisor")
        self.served.update(_key(h) for h in taken if _key(h) not in self.served)
        return [sock for h in taken for sock in h.sockets]

    async def settle(self, runtime: Runtime) -> None:
        """After an apply: adopt the slots given for running listeners and not yet served
        (a worker that stopped left them); close the rest (duplicates of served ones)."""
        for held in self.given.held:
            running = runtime.listeners.get(held.name)
            new = _key(held) not in self.served
            if (
                new
                and running is not None
                and (running.spec.host, running.port)
                == (
                    held.host,
                    held.port,
                )
            ):
                self.served.add(_key(held))
                await runtime.adopt(held.name, list(held.sockets))
            else:
                for sock in held.sockets:
                    sock.close()
        self.given = Inherited()


def worker_main(config: Config, index: int, pipe: Pipe) -> None:
    """A worker process (the target of multiprocessing's spawn)."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_IGN)
    setup_logging()
    raise_fd_limit()
    tune_malloc()
    slots = Slots()
    try:
        message = pipe.recv()
        if message[0] == "sockets":
            slots.given = Inherited(recv_sockets(pipe))
    except (EOFError, OSError):
        sys.exit(1)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        try:
            runner.run(_worker(config, pipe, slots))
        except (ListenError, ConfigError) as exc:
            with contextlib.suppress(OSError):
                pipe.send(("error", str(exc)))
            sys.exit(1)


async def _worker(config: Config, pipe: Pipe, slots: Slots) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    runtime = Runtime(config, loop, log_transitions=False, sockets=slots.source)
    if config.admin is not None:
        runtime.count(Stats())  # counters only where someone can read them
    access = observe_access(runtime, config)
    applying: set[asyncio.Task[None]] = set()

    terms = [0]  # SIGTERMs: the first drains, a second cuts (a lost pipe is no signal)

    def on_term() -> None:
        terms[0] += 1
        if terms[0] > 1:
            runtime.hurry()
        stop.set()

    loop.add_signal_handler(signal.SIGTERM, on_term)

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
                    _, gen, new, start_down = message
                    held = recv_sockets(pipe)
                    task = loop.create_task(
                        _apply(runtime, slots, pipe, (gen, new, start_down), held)
                    )
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
    await slots.settle(runtime)
    loop.add_reader(pipe.fileno(), on_message)
    pipe.send(("ready", os.getpid()))
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(pipe.fileno())
        await runtime.stop()
        if access is not None:
            access.close()  # every line of the drained exchanges written


Applying = tuple[int, Config, Collection[tuple[str, str]]]  # generation, config, start_down


async def _apply(
    runtime: Runtime, slots: Slots, pipe: Pipe, applying: Applying, held: list[Held]
) -> None:
    gen, config, start_down = applying
    slots.given = Inherited(held)
    problem: str | None = None
    try:
        await runtime.apply(config, start_down)
    except ListenError as exc:
        problem = f"worker pid {os.getpid()}: {exc}; its other listeners run the new configuration"
        log.error(problem)
    await slots.settle(runtime)
    with contextlib.suppress(OSError, ValueError):
        pipe.send(("applied", gen, problem))
