"""What the main process does besides serving, the same for one process and for the
supervisor of `--workers`: signals, the pid file, the control socket, reloads, binary
upgrades and systemd's readiness protocol.

    SIGHUP            Reloader.reload_now()     (also `rota reload`, POST /api/v1/reload)
    SIGUSR2           Service.upgrade_now()     (also `rota upgrade`)
    SIGTERM, SIGINT   drain: stop accepting, finish what is in flight, exit 0 when done or
                      at `drain_timeout`; a second one cuts what is left at once

Every listening socket the process holds reaches an upgrade through one function,
`Service.held()`: whoever holds sockets registers a source with `hold()` (the runtime's
listeners, the supervisor's socket table, the control socket, the admin listener).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from rota.control import Answer, ControlServer, control_path
from rota.handover import Held
from rota.notify import notify
from rota.pidfile import names_me, remove_pid, write_pid
from rota.reloader import Reloader
from rota.upgrade import Predecessor, start_successor

log = logging.getLogger("rota")

HeldSource = Callable[[], list[Held]]


@dataclass(frozen=True)
class ProcessOptions:
    """How `rota lb` was started, beyond its configuration."""

    pid_file: Path | None = None
    argv: tuple[str, ...] = ()  # the arguments after `rota`, for the new process of an upgrade


class EarlySignals:
    """Until the event loop takes them over, remember a SIGHUP (a reload is done once rota
    has started) and ignore SIGUSR2, instead of dying of their default action."""

    def __init__(self) -> None:
        self.hup = False

    def install(self) -> EarlySignals:
        signal.signal(signal.SIGHUP, self._on_hup)
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        return self

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self.hup = True


class Service:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        options: ProcessOptions,
        predecessor: Predecessor,
        early: EarlySignals | None = None,
    ) -> None:
        self.loop = loop
        self.options = options
        self.predecessor = predecessor
        self.early = early
        self.reloader: Reloader | None = None
        self.stop = asyncio.Event()  # the first SIGTERM/SIGINT, or a finished upgrade
        self.sources: list[HeldSource] = []
        self.hurry: list[Callable[[], None]] = []  # called on a second stop signal
        self.handed_over = False
        self.successor = 0  # the new process's pid, after an upgrade
        self.control: ControlServer | None = None
        self._upgrading = asyncio.Lock()
        self._tasks: set[asyncio.Task[object]] = set()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_stop, sig)
        loop.add_signal_handler(signal.SIGHUP, self._spawn, self.reload_now)
        loop.add_signal_handler(signal.SIGUSR2, self._spawn, self.upgrade_now)

    # the pieces

    def hold(self, source: HeldSource) -> None:
        """Register a holder of listening sockets: they go to the new process of an
        upgrade."""
        self.sources.append(source)

    def held(self) -> list[Held]:
        return [held for source in self.sources for held in source()]

    async def begin(self) -> None:
        """Before listeners start: the pid file (unless taking over from an old process:
        then once serving) and the control socket."""
        pid_file = self.options.pid_file
        if pid_file is None:
            return
        if self.predecessor.link is None:
            write_pid(pid_file)
        path = control_path(pid_file)
        taken = self.predecessor.inherited.take("control", str(path), 0)
        self.control = ControlServer(
            {"reload": self._reload_command, "upgrade": self._upgrade_command}
        )
        await self.control.start(path, taken[0].sockets[0] if taken else None)
        self.hold(self.control.held)

    def ready(self) -> None:
        """Serving: close what was handed over and not taken, tell the old process and
        systemd, replay a SIGHUP that came during start-up."""
        self.predecessor.inherited.close_rest()
        fields = ["READY=1"]
        if self.predecessor.link is not None:
            if self.options.pid_file is not None:
                write_pid(self.options.pid_file)
            fields.append(f"MAINPID={os.getpid()}")
        self.predecessor.ready()
        notify(*fields)
        if self.early is not None and self.early.hup:
            self._spawn(self.reload_now)

    async def close(self) -> None:
        """At exit: the pid file and the control socket's path go, if this process owns
        them (not after an upgrade; not if it was the new process of an upgrade that
        failed, whose old process serves on)."""
        pid_file = self.options.pid_file
        owner = pid_file is not None and names_me(pid_file) and not self.handed_over
        if self.control is not None:
            await self.control.aclose(unlink=owner)
        if owner and pid_file is not None:
            remove_pid(pid_file)

    # what signals and the control socket ask for

    async def reload_now(self) -> str | None:
        if self.reloader is None:
            return "not started yet"
        notify("RELOADING=1")
        try:
            return await self.reloader.reload_now()
        finally:
            notify("READY=1")

    async def upgrade_now(self) -> str | None:
        """Start a new rota and hand it every listening socket; once it serves, drain and
        exit. A new process that fails leaves this one serving."""
        if self.stop.is_set():
            return "upgrade refused: this process is stopping"
        async with self._upgrading:
            if self.stop.is_set():  # another upgrade finished while this one waited
                return "upgrade refused: this process is stopping"
            log.info("upgrade: starting a new process")
            pid, problem = await start_successor(self.options.argv, self.held())
            if problem is not None:
                message = f"upgrade failed, pid {os.getpid()} keeps serving: {problem}"
                log.error(message)
                return message
            log.info("upgrade: pid %d serves now; pid %d drains", pid, os.getpid())
            self.handed_over = True
            self.successor = pid
            self.stop.set()
            return None

    async def _reload_command(self) -> Answer:
        problem = await self.reload_now()
        if problem is None:
            return 0, f"reloaded (pid {os.getpid()})"
        bad_file = self.reloader is not None and self.reloader.bad_file
        return (2 if bad_file else 1), problem

    async def _upgrade_command(self) -> Answer:
        problem = await self.upgrade_now()
        if problem is None:
            return 0, f"upgraded: pid {self.successor} serves, pid {os.getpid()} drains"
        return 1, problem

    def _on_stop(self, sig: int) -> None:
        if self.stop.is_set():
            # A second signal, or one while draining after an upgrade: stop at once.
            log.info("%s: closing what is still open", signal.Signals(sig).name)
            for hurry in self.hurry:
                hurry()
            return
        log.info("%s: draining", signal.Signals(sig).name)
        notify("STOPPING=1")
        self.stop.set()

    def _spawn(self, job: Callable[[], object]) -> None:
        task = self.loop.create_task(_run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _run(job: Callable[[], object]) -> object:
    result = job()
    if asyncio.iscoroutine(result):
        return await result
    return result
