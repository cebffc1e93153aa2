"""rota's HTTP data plane in memory: no sockets, no threads, a clock the test moves.

Two layers:

- `MemoryTransport`: one end of a connection. It records what rota writes and whether rota
  closed, aborted or half-closed it, and whether reading is paused. Bytes from the peer are
  delivered to the protocol as a socket would: held while reading is paused, dropped once
  the transport is closed, `connection_lost` called once, from the event loop, after a close.
  `bench/hotpath.py` uses it bare (no loop, no protocol): then it only records.
- `Harness`: a whole data plane (config, backends, connection pools, balancer) on a
  `MemoryLoop`, an asyncio loop whose clock only moves when the test says so and whose
  `create_connection` hands rota in-memory backend connections (or a refusal, or a connect
  that never completes, per backend).

The tests speak to the harness only through this API, so that when the constructors of the
proxy objects change, this file is the only one to follow:

    h = Harness(backends=3, timeouts={"response": 5})   # overrides use the config file's keys
    c = h.client()            # ClientEnd, a new client connection
    b = h.backend_conn(0)     # BackendEnd: backend 0's newest connection from rota
    # Both ends: .send(bytes) to rota, .eof() (half-close), .lose(exc=None) (gone; a reset
    #   with an exception), .stall() / .drain() (stop / resume reading: rota's writes back
    #   up), .received() (every byte rota wrote to it), and what rota did to it: .closed,
    #   .aborted, .eof_written, .reading_paused
    h.backend_conns(0)        # every connection rota opened to backend 0, oldest first
    h.refuse(1); h.hang(2); h.accept(1)   # how backend i answers new connections
    h.set_down(0); h.set_up(0)            # its health state
    h.advance(31.0)           # move the clock (deadline sweeps and timers run on the way)
    h.use_loop_clock()        # exchanges' times from that clock too (h.ended: the outcomes)
    h.run()                   # run whatever the loop has ready (every call above does)

Every call that feeds bytes or moves time runs the loop until nothing is ready, so a test
reads the outcome right after. An exception raised inside rota in a loop callback or a task
fails the test at that call, instead of being logged and lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from rota.config.load import build_config
from rota.instance import Runtime
from rota.observe.metrics import Stats
from rota.outcome import Outcome
from rota.pool import State
from rota.proxy.client import ClientConnection
from rota.proxy.context import ProxyContext

# The clock starts here, not at 0, so that nothing passes by reading 0.0 as "never".
START_TIME = 1000.0
# A loop that is still busy after this many iterations is a loop rota feeds forever.
MAX_ITERATIONS = 10_000


class _Protocol(Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None: ...
    def data_received(self, data: bytes) -> None: ...
    def eof_received(self) -> bool | None: ...
    def connection_lost(self, exc: Exception | None) -> None: ...
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...


class MemoryTransport(asyncio.Transport):
    """One end of an in-memory connection, as rota's protocol sees it.

    What rota did to it: `sent` (each write), `closed` (close or abort), `aborted` (abort
    before any close), `eof_written` (write_eof), `reading_paused`. The peer's side:
    `feed`, `feed_eof`, `lose`.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        peername: tuple[str, int] = ("127.0.0.1", 40000),
    ) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.closed = False
        self.aborted = False
        self.eof_written = False
        self.reading_paused = False
        self.write_blocked = False
        self.write_limits: tuple[int | None, int | None] | None = None
        self.peername = peername
        self._loop = loop
        self._protocol: _Protocol | None = None
        self._inbox: list[bytes | None] = []  # held while reading is paused; None is the EOF
        self._eof_read = False
        self._lost = False

    def connect(self, protocol: Any) -> None:
        """Hand this transport to `protocol` (its connection_made); what the peer sent
        before (while it waited to be accepted) is delivered after."""
        self._protocol = protocol
        protocol.connection_made(self)
        if self._inbox and self._loop is not None:
            self._loop.call_soon(self._deliver)

    @property
    def accepted(self) -> bool:
        return self._protocol is not None

    # What rota calls.

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.eof_written:
            # asyncio's and uvloop's transports refuse this too.
            raise RuntimeError("write() after write_eof()")
        if not self.closed:  # a closed socket's writes go nowhere
            self.sent.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._schedule_lost(None)

    def abort(self) -> None:
        if self.closed:
            return  # asyncio: after a close with nothing buffered, abort does nothing
        self.closed = True
        self.aborted = True
        self._schedule_lost(None)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peername if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.write_limits = (high, low)

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        if not self.reading_paused:
            return
        self.reading_paused = False
        if self._inbox and self._loop is not None:
            self._loop.call_soon(self._deliver)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if not self.closed:
            self.eof_written = True

    # The peer's side.

    def feed(self, data: bytes) -> None:
        """Bytes from the peer; held while reading is paused."""
        self._inbox.append(data)
        self._deliver()

    def feed_eof(self) -> None:
        """The peer half-closed (FIN)."""
        self._inbox.append(None)
        self._deliver()

    def set_write_blocked(self, blocked: bool) -> None:
        """The peer stops (or starts again) reading: what rota writes backs up past the
        transport's high-water mark, so the transport calls pause_writing (resume_writing)."""
        if blocked == self.write_blocked or self._protocol is None:
            return
        self.write_blocked = blocked
        if blocked:
            self._protocol.pause_writing()
        else:
            self._protocol.resume_writing()

    def lose(self, exc: Exception | None) -> None:
        """The connection is gone under rota (a reset when `exc` is given)."""
        if self.closed:
            return
        self.closed = True
        self._schedule_lost(exc)

    def _deliver(self) -> None:
        protocol = self._protocol
        if protocol is None:
            return  # not accepted yet: held, as in the kernel's buffers
        while self._inbox and not self.reading_paused and not self.closed and not self._eof_read:
            item = self._inbox.pop(0)
            if item is not None:
                protocol.data_received(item)
                continue
            # As asyncio does at EOF: stop reading; close unless the protocol keeps it open.
            self._eof_read = True
            if not protocol.eof_received():
                self.close()

    def _schedule_lost(self, exc: Exception | None) -> None:
        if self._loop is not None and self._protocol is not None:
            self._loop.call_soon(self._connection_lost, exc)

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._lost or self._protocol is None:
            return
        self._lost = True
        self._protocol.connection_lost(exc)


class _NoSelector:
    """Nothing to poll: every event comes from the test."""

    def select(self, timeout: float | None = None) -> list[Any]:
        return []

    def close(self) -> None:
        pass


Connector = Callable[[Callable[[], Any], str, int], Any]


class MemoryLoop(asyncio.BaseEventLoop):
    """A real asyncio loop (tasks, call_soon, timers, `asyncio.timeout`) with no I/O: its
    clock is `clock`, and `create_connection` is answered by the harness.

    `_selector`, `_process_events` and `_write_to_self` are the hooks CPython's own
    `BaseSelectorEventLoop` fills in (unchanged from 3.8 to 3.13); `_ready` is the queue of
    callbacks `_run_once` runs. rota itself runs on uvloop or the default loop: this one is
    only the test's stand-in, and rota's code under test is not patched.
    """

    def __init__(self, connector: Connector) -> None:
        super().__init__()
        self.clock = START_TIME
        self._selector = _NoSelector()
        self._connector = connector
        self.tasks: list[asyncio.Task[Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.set_exception_handler(lambda _loop, context: self.errors.append(context))

    def time(self) -> float:
        return self.clock

    def _process_events(self, event_list: list[Any]) -> None:
        pass

    def _write_to_self(self) -> None:
        pass

    def create_task(self, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        task = super().create_task(coro, **kwargs)
        self.tasks.append(task)
        return task

    async def create_connection(  # type: ignore[override]
        self, protocol_factory: Callable[[], Any], host: str, port: int, **kwargs: Any
    ) -> tuple[asyncio.Transport, Any]:
        result: tuple[asyncio.Transport, Any] = await self._connector(protocol_factory, host, port)
        return result

    def run_ready(self) -> None:
        """Run iterations until no callback is ready; raise what rota raised on the way."""
        for _ in range(MAX_ITERATIONS):
            self.call_soon(self.stop)
            self.run_forever()
            self._raise_errors()
            if not self._ready:  # type: ignore[attr-defined]
                return
        raise AssertionError(f"the loop is still busy after {MAX_ITERATIONS} iterations")

    def _raise_errors(self) -> None:
        for task in self.tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise AssertionError(f"a task of rota failed: {task!r}") from task.exception()
        self.tasks = [t for t in self.tasks if not t.done()]
        if self.errors:
            context = self.errors.pop(0)
            exc = context.get("exception")
            raise AssertionError(f"error in the event loop: {context.get('message')}") from exc


def _shutdown(loop: MemoryLoop) -> None:
    """Cancel what still waits (a hung connect), let it unwind, close the loop."""
    for task in loop.tasks:
        task.cancel()
    loop.errors.clear()
    if not loop.is_closed():
        for _ in range(10):
            loop.call_soon(loop.stop)
            loop.run_forever()
        loop.close()


class _End:
    """The test's side of one in-memory connection."""

    def __init__(self, harness: Harness, transport: MemoryTransport) -> None:
        self._harness = harness
        self.transport = transport

    def send(self, data: bytes) -> None:
        """Bytes from this peer to rota."""
        self.transport.feed(data)
        self._harness.run()

    def eof(self) -> None:
        """This peer half-closes (shutdown(SHUT_WR)): rota reads EOF."""
        self.transport.feed_eof()
        self._harness.run()

    def lose(self, exc: Exception | None = None) -> None:
        """The connection is gone (a reset when `exc` is given, e.g. ConnectionResetError())."""
        self.transport.lose(exc)
        self._harness.run()

    def stall(self) -> None:
        """This peer stops reading: rota's writes to it back up (pause_writing)."""
        self.transport.set_write_blocked(True)
        self._harness.run()

    def drain(self) -> None:
        """This peer reads again (resume_writing)."""
        self.transport.set_write_blocked(False)
        self._harness.run()

    def received(self) -> bytes:
        """Every byte rota has written to this peer so far."""
        return b"".join(self.transport.sent)

    @property
    def closed(self) -> bool:
        """rota closed or aborted the connection (or the peer lost it)."""
        return self.transport.closed

    @property
    def aborted(self) -> bool:
        """rota aborted it (RST, buffered bytes dropped) rather than closing it."""
        return self.transport.aborted

    @property
    def eof_written(self) -> bool:
        """rota half-closed its write side (FIN) and kept reading."""
        return self.transport.eof_written

    @property
    def reading_paused(self) -> bool:
        return self.transport.reading_paused


class ClientEnd(_End):
    def __repr__(self) -> str:
        return f"<ClientEnd {self.transport.peername}>"

    @property
    def accepted(self) -> bool:
        """rota has accepted it (False: it waits in the listen backlog, at the cap)."""
        return self.transport.accepted


class BackendEnd(_End):
    def __init__(self, harness: Harness, transport: MemoryTransport, index: int) -> None:
        super().__init__(harness, transport)
        self.index = index

    def __repr__(self) -> str:
        return f"<BackendEnd {self.index} closed={self.closed}>"


class Harness:
    """A data plane with `backends` backends (127.0.0.1:7001...) in memory.

    `overrides` are top-level keys of the config file: `timeouts={"response": 5}`,
    `limits={"pool_size": 0}`. `routes`, a list of route tables as in a config file, makes
    the listener route by them, its pool named `default` (the seed's one catch-all route
    otherwise).
    """

    def __init__(
        self,
        backends: int = 3,
        routes: list[dict[str, Any]] | None = None,
        pool: dict[str, Any] | None = None,
        server: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> None:
        servers = [{"host": "127.0.0.1", "port": 7001 + i} for i in range(backends)]
        data: dict[str, Any] = {"server_list": servers, **overrides}
        if routes is not None:
            data = {
                "listeners": {"web": {"bind": "127.0.0.1:0", "routes": routes}},
                "pools": {"default": {"servers": servers}},
                **overrides,
            }
        config = build_config(data, "memory harness", {})
        if pool or server:
            # PoolSpec / BackendSpec fields set directly (the loader is tested elsewhere).
            spec = config.pools[0]
            servers_ = tuple(dataclasses.replace(s, **(server or {})) for s in spec.servers)
            spec = dataclasses.replace(spec, servers=servers_, **(pool or {}))
            config = dataclasses.replace(config, pools=(spec,))
        self._loop = MemoryLoop(self._connect)
        weakref.finalize(self, _shutdown, self._loop)
        self.runtime = Runtime(config, self._loop, log_transitions=False)
        self._pool = self.runtime.pools["default"]
        self._ctx = ProxyContext(config.listeners[0], self.runtime.pools, self._loop)
        # Every exchange's end, as the listener's observers hear of it.
        self.ended: list[Outcome] = []
        self._ctx.observers.append(self.ended.append)
        self._ctx.describe = True  # the tests read every fact of an outcome
        self._index = {(b.host, b.port): i for i, b in enumerate(self._pool.backends)}
        self._modes = ["accept"] * backends
        self._conns: list[list[BackendEnd]] = [[] for _ in range(backends)]
        self._clients = 0
        # Accepting as rota.proxy.listener.Listener does: at most `max_connections`, then
        # room made (ProxyContext.make_room) or the client waits, as in a listen backlog.
        self._active = 0
        self._backlog: list[MemoryTransport] = []
        self._ctx.release = self._released
        self._ctx.resume = self._resume

    def count(self) -> Stats:
        """Count this data plane's traffic as the admin listener's metrics do."""
        stats = Stats()
        self.runtime.stats = stats
        self._ctx.observers.append(stats.observe)
        self._ctx.on_backend_error = self.runtime.backend_failed
        return stats

    # The client side.

    def client(self) -> ClientEnd:
        """A new client connection, accepted (or waiting in the backlog, at the cap)."""
        self._clients += 1
        transport = MemoryTransport(self._loop, ("192.0.2.1", 50000 + self._clients))
        self._backlog.append(transport)
        self._accept()
        self.run()
        return ClientEnd(self, transport)

    def _accept(self) -> None:
        ctx = self._ctx
        while self._backlog:
            if self._active >= ctx.limits.max_connections and not ctx.make_room():
                return
            transport = self._backlog.pop(0)
            self._active += 1
            transport.connect(ClientConnection(ctx, transport.peername))

    def _released(self) -> None:
        self._active -= 1
        self._loop.call_soon(self._accept)  # as the listener's next readiness event

    def _resume(self) -> None:
        self._loop.call_soon(self._accept)

    # The backend side.

    def backend_conn(self, i: int) -> BackendEnd:
        """Backend i's newest connection from rota."""
        conns = self._conns[i]
        if not conns:
            raise AssertionError(f"rota has opened no connection to backend {i}")
        return conns[-1]

    def backend_conns(self, i: int) -> list[BackendEnd]:
        """Every connection rota opened to backend i, oldest first."""
        return list(self._conns[i])

    def accept(self, i: int) -> None:
        """Backend i accepts new connections (the default)."""
        self._modes[i] = "accept"

    def refuse(self, i: int) -> None:
        """Backend i refuses new connections (ECONNREFUSED)."""
        self._modes[i] = "refuse"

    def hang(self, i: int) -> None:
        """New connections to backend i never complete (until rota's connect timeout)."""
        self._modes[i] = "hang"

    def in_flight(self, i: int) -> int:
        """Exchanges counted in flight on backend i."""
        return self._pool.backends[i].active

    def set_down(self, i: int) -> None:
        self._pool.set_state(self._pool.backends[i], State.DOWN, "test")
        self.run()

    def set_up(self, i: int) -> None:
        self._pool.set_state(self._pool.backends[i], State.UP, "test")
        self.run()

    # Time.

    def use_loop_clock(self) -> None:
        """Exchanges read the harness's clock for their start, end, connect and response
        times (rota reads the real monotonic clock, as the event loop's): a test can then
        state those times exactly."""
        self._ctx.clock = self._loop.time

    def run(self) -> None:
        """Run the loop until nothing is ready."""
        self._loop.run_ready()

    def advance(self, seconds: float) -> None:
        """Move the clock by `seconds`, in steps of the deadline sweep's interval, running
        due timers and the sweep at each step, as the real server does."""
        end = self._loop.clock + seconds
        step = self._ctx.sweep_interval()
        while self._loop.clock < end:
            self._loop.clock = min(end, self._loop.clock + step)
            self.run()
            self._ctx.sweep()
            self.run()

    async def _connect(
        self, factory: Callable[[], Any], host: str, port: int
    ) -> tuple[MemoryTransport, Any]:
        i = self._index[(host, port)]
        mode = self._modes[i]
        if mode == "refuse":
            raise ConnectionRefusedError(111, "Connection refused")
        if mode == "hang":
            await self._loop.create_future()  # rota's connect timeout cancels this
        protocol = factory()
        transport = MemoryTransport(self._loop, (host, port))
        transport.connect(protocol)
        self._conns[i].append(BackendEnd(self, transport, i))
        return transport, protocol
