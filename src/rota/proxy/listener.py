"""Listening sockets and an accept loop that honours a cap on concurrent connections.

Why not `loop.create_server`: its accept loop has no public way to stop accepting while
keeping the listening socket. Closing the server and re-binding would drop the kernel's
backlog and race other binders; reaching into `loop._stop_serving` is private and does not
exist in uvloop. Instead this module watches the listening socket with `loop.add_reader`
(public, and supported by uvloop) and accepts by hand. At the cap it removes the reader:
new connections then wait in the kernel's accept queue (the listen backlog), exactly as
the issue asks ("excess waits in the backlog, not refused"), and the reader comes back as
soon as a connection ends. Nothing is polled; nothing is refused.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable

log = logging.getLogger("rota.listener")

# Linux caps the backlog at net.core.somaxconn (4096 by default since 5.4).
DEFAULT_BACKLOG = 4096
# Connections taken per readiness event: enough to drain a burst, few enough that a flood
# of connects cannot starve the connections already open.
ACCEPT_BATCH = 64
# asyncio waits this long after EMFILE and friends before accepting again.
RESOURCE_RETRY_DELAY = 1.0
_RESOURCE_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)

# Called with each accepted socket and its peer address, from accept(): the address is
# known there for free, where getpeername later is a syscall per connection. The socket is
# still in blocking mode: the owner gives it to the event loop, which makes it non-blocking.
OnAccept = Callable[[socket.socket, object], None]
# Called at the cap before accepting: True if it closed a connection (and called
# `release()`), so that one more may be accepted now.
MakeRoom = Callable[[], bool]


def bind(
    host: str, port: int, backlog: int = DEFAULT_BACKLOG, *, reuse_port: bool = False
) -> list[socket.socket]:
    """Non-blocking listening sockets for every address `host` resolves to (one, usually).
    With port 0 the first socket's port is reused for the others, so all share one port.
    `reuse_port` lets several worker processes listen on the same port (SO_REUSEPORT)."""
    infos = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    seen: set[tuple[int, str]] = set()
    try:
        for family, kind, proto, _, address in infos:
            key = (family, str(address[0]))
            if key in seen:
                continue
            seen.add(key)
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                # One socket per family, as asyncio does; "::" must not also take IPv4.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def accepted_class(listening: socket.socket) -> type[socket.socket]:
    """The class of the sockets accepted on `listening`: a `socket.socket` whose `family`
    and `type` are plain class attributes.

    `socket.socket.family` and `.type` are Python properties that build an enum member on
    every read, several microseconds each on this machine, and they are read five times per
    connection: twice by `socket.accept()`, three times by `connect_accepted_socket`
    (uvloop's and asyncio's check the socket's type and family). As class attributes they
    cost a lookup. Still a `socket.socket`: uvloop detaches (does not close) a socket of
    that class when its transport closes the fd."""
    family, kind = listening.family, listening.type
    return type(
        f"Accepted{family.name}",
        (socket.socket,),
        {"__slots__": (), "family": family, "type": kind},
    )


class Listener:
    """Accepts on `sockets`, hands each new connection to `on_accept`, and keeps at most
    `max_connections` of them open: the owner calls `release()` when one has ended.

    At the cap, `make_room` (if given) may close a connection that is worth less than a
    new client (HTTP: a head still arriving, or idle in keep-alive); if it cannot,
    accepting stops until a connection ends, or until the owner calls `start()` because
    one has become worth closing."""

    __slots__ = (
        "_classes",
        "_loop",
        "_make_room",
        "_on_accept",
        "_retry",
        "_watching",
        "active",
        "max_connections",
        "sockets",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sockets: list[socket.socket],
        on_accept: OnAccept,
        max_connections: int,
        make_room: MakeRoom | None = None,
    ) -> None:
        self._loop = loop
        self.sockets = sockets
        self._on_accept = on_accept
        self._make_room = make_room
        self._classes: dict[tuple[int, int], type[socket.socket]] = {}
        self.max_connections = max_connections
        self.active = 0
        self._watching = False
        self._retry: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        state = "accepting" if self._watching else "paused"
        return f"<Listener {state} [{self.active}/{self.max_connections}]>"

    @property
    def accepting(self) -> bool:
        return self._watching

    def start(self) -> None:
        """Watch the sockets, unless at the cap with nothing to make room from."""
        if self._watching or self._retry is not None or not self.sockets:
            return
        if self.active < self.max_connections or self._make_room is not None:
            for sock in self.sockets:
                family, kind = sock.family, sock.type  # enum properties: read once here
                self._loop.add_reader(
                    sock.fileno(),
                    self._accept,
                    sock,
                    self._class_of(sock, family, kind),
                    family,
                    kind,
                )
            self._watching = True

    def pause(self) -> None:
        if self._watching:
            for sock in self.sockets:
                self._loop.remove_reader(sock.fileno())
            self._watching = False

    def add(self, sockets: list[socket.socket]) -> None:
        """Accept on more listening sockets too (a worker slot taken over)."""
        watching = self._watching
        self.pause()
        self.sockets = self.sockets + sockets
        if watching:
            self.start()

    def close(self) -> None:
        self.pause()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        for sock in self.sockets:
            sock.close()
        self.sockets = []

    def release(self) -> None:
        """One connection has ended: make room for the next one from the backlog."""
        self.active -= 1
        if not self._watching:
            self.start()

    def _class_of(self, sock: socket.socket, family: int, kind: int) -> type[socket.socket]:
        accepted = self._classes.get((family, kind))
        if accepted is None:
            accepted = self._classes[family, kind] = accepted_class(sock)
        return accepted

    def _accept(
        self, sock: socket.socket, accepted: type[socket.socket], family: int, kind: int
    ) -> None:
        # `family` and `kind` come from start(): the listening socket's properties build an
        # enum member on every read (a few thousand instructions per readiness event).
        make_room = self._make_room
        proto = sock.proto
        for taken in range(ACCEPT_BATCH):
            if self.active >= self.max_connections:
                if make_room is not None and taken:
                    # Room is made only for a client known to wait: the one this readiness
                    # event announced. Another still waiting makes the socket ready again.
                    return
                if make_room is None or not make_room():
                    self.pause()
                    return
            try:
                # What socket.accept() does, without its two enum-building property
                # reads: the C accept, then the socket object (accepted_class).
                fd, address = sock._accept()  # type: ignore[attr-defined]
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _RESOURCE_ERRORS:
                    # Out of file descriptors or memory: stop for a moment rather than
                    # spin on a socket that stays readable.
                    log.warning("accept failed: %s; pausing %.1f s", exc, RESOURCE_RETRY_DELAY)
                    self.pause()
                    self._retry = self._loop.call_later(RESOURCE_RETRY_DELAY, self._resume)
                    return
                # ECONNABORTED and the like: that client gave up; take the next.
                continue
            conn = accepted(family, kind, proto, fd)
            # Not set non-blocking here: every owner hands the socket to
            # loop.connect_accepted_socket, which does (uvloop's uv_tcp_open, asyncio's
            # transport set-up): one ioctl fewer per connection.
            self.active += 1
            self._on_accept(conn, address)

    def _resume(self) -> None:
        self._retry = None
        if self.sockets:
            self.start()
