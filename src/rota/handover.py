"""Listening sockets passed from one process to another with SCM_RIGHTS.

A binary upgrade hands every listening socket the old process holds to the new one; the
supervisor of `--workers` hands each worker the sockets it accepts on. Passing the socket
itself (not its address) is what keeps the kernel's accept queue: the new holder accepts
what is already queued, and the old holder's close is only one file descriptor of several,
so the socket stays open and no queued connection is reset.

The wire format is one JSON line describing the sockets, in order, followed by one byte
carrying the file descriptors (`socket.send_fds`). Each entry is a `Held`: the listener's
name (the admin listener joins as "admin", the control socket as "control"), the address as
configured (host, port as bound), the worker slot, and how many sockets it has (one per
address family the host resolved to).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable
from dataclasses import dataclass

# Linux passes at most 253 descriptors per message (SCM_MAX_FD); more go in more messages.
FDS_PER_MESSAGE = 250
MAX_LINE = 1 << 20


@dataclass(frozen=True)
class Held:
    """Listening sockets held for one listener (one worker slot of it)."""

    name: str
    host: str
    port: int
    slot: int
    sockets: tuple[socket.socket, ...]


def send_held(link: socket.socket, held: Iterable[Held]) -> None:
    """Send `held` over a connected AF_UNIX stream socket (blocking)."""
    entries = list(held)
    meta = [
        {"name": h.name, "host": h.host, "port": h.port, "slot": h.slot, "count": len(h.sockets)}
        for h in entries
    ]
    fds = [sock.fileno() for h in entries for sock in h.sockets]
    link.sendall(json.dumps(meta).encode() + b"\n")
    for start in range(0, len(fds), FDS_PER_MESSAGE) or [0]:
        socket.send_fds(link, [b"F"], fds[start : start + FDS_PER_MESSAGE])


def recv_held(link: socket.socket) -> list[Held]:
    """Receive what `send_held` sent (blocking). Raises OSError if the link breaks."""
    line = b""
    while not line.endswith(b"\n"):
        chunk = link.recv(1)  # byte by byte: nothing past the line may be consumed
        if not chunk or len(line) > MAX_LINE:
            raise OSError("the handover link closed before the socket list")
        line += chunk
    meta = json.loads(line)
    total = sum(int(entry["count"]) for entry in meta)
    fds: list[int] = []
    while True:
        _, got, _, _ = socket.recv_fds(link, 1, FDS_PER_MESSAGE)
        fds += got
        if len(fds) >= total:
            break
    held: list[Held] = []
    at = 0
    for entry in meta:
        count = int(entry["count"])
        sockets = tuple(socket.socket(fileno=fd) for fd in fds[at : at + count])
        for sock in sockets:
            sock.setblocking(False)
        at += count
        held.append(
            Held(
                str(entry["name"]),
                str(entry["host"]),
                int(entry["port"]),
                int(entry["slot"]),
                sockets,
            )
        )
    return held


class Inherited:
    """Sockets received from another process, taken by the listeners that want them; what
    nobody takes is closed by `close_rest`."""

    def __init__(self, held: Iterable[Held] = ()) -> None:
        self.held = list(held)

    def __len__(self) -> int:
        return len(self.held)

    def take(self, name: str, host: str, port: int) -> list[Held]:
        """Every slot held for listener `name` at host:port (port 0: any port), else every
        slot held at exactly host:port under another name; [] if none."""
        mine = [h for h in self.held if h.name == name and h.host == host and port in (0, h.port)]
        if not mine and port != 0:
            mine = [h for h in self.held if h.host == host and h.port == port]
        self.held = [h for h in self.held if h not in mine]
        return sorted(mine, key=lambda h: h.slot)

    def take_sockets(self, name: str, host: str, port: int) -> list[socket.socket]:
        return [sock for h in self.take(name, host, port) for sock in h.sockets]

    def close_rest(self) -> None:
        for h in self.held:
            for sock in h.sockets:
                sock.close()
        self.held = []
