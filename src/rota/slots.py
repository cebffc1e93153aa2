"""The supervisor's listening sockets: per listener, one SO_REUSEPORT socket group per
worker slot, bound once by the supervisor and held by it for as long as the listener runs.

Why the supervisor holds them: with SO_REUSEPORT each socket has its own accept queue, and
closing the last descriptor of a socket resets the connections waiting in it. A worker that
stops (a drain, an upgrade, a smaller `workers`, a crash) therefore only closes its own
descriptor; the socket stays open in the supervisor, and whoever serves the slot next (a
restarted worker, a remaining worker that adopts it, the new process of an upgrade) accepts
what waited there. Slots are never closed while their listener runs: with fewer workers
than slots, worker i serves every slot j with j % workers == i.
"""

from __future__ import annotations

import errno
import socket

from rota.config.model import ListenerSpec
from rota.handover import Held, Inherited
from rota.proxy.listener import bind


class SlotError(Exception):
    """A listener's address cannot be bound (exit code 1 at start; a failed reload)."""


def check_bindable(spec: ListenerSpec) -> str | None:
    """Without SO_REUSEPORT, so that any listener on the port, another rota's workers
    included, is an error instead of a silent share of the port."""
    family = socket.AF_INET6 if ":" in spec.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((spec.host, spec.port))
        except OSError as exc:
            return _problem(spec, exc)
    return None


def _problem(spec: ListenerSpec, exc: OSError) -> str:
    what = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
    return f"cannot listen on {spec.address}: {what}"


class SocketTable:
    def __init__(self) -> None:
        self.groups: dict[str, list[Held]] = {}  # listener name -> its slots, in order

    def __repr__(self) -> str:
        return f"<SocketTable {', '.join(f'{n}x{len(g)}' for n, g in self.groups.items())}>"

    def port(self, name: str) -> int:
        return self.groups[name][0].port

    def prepare(
        self, listeners: tuple[ListenerSpec, ...], slots: int, inherited: Inherited
    ) -> list[Held]:
        """Make every listener have at least `slots` slots at its address: kept, taken from
        `inherited`, or bound. Returns the groups no longer wanted (the caller closes them
        once the workers let go). Raises SlotError, binding nothing new, if an address
        cannot be bound."""
        wanted = {spec.name: spec for spec in listeners}
        fresh: dict[str, list[Held]] = {}
        try:
            for spec in listeners:
                have = self.groups.get(spec.name, [])
                if not have or have[0].host != spec.host or spec.port not in (0, have[0].port):
                    have = inherited.take(spec.name, spec.host, spec.port)
                    if not have:
                        problem = check_bindable(spec)
                        if problem is not None:
                            raise SlotError(problem)
                fresh[spec.name] = have = list(have)
                while len(have) < slots:
                    port = have[0].port if have else spec.port
                    try:
                        sockets = bind(spec.host, port, reuse_port=True)
                    except OSError as exc:
                        raise SlotError(_problem(spec, exc)) from None
                    port = int(sockets[0].getsockname()[1])
                    have.append(Held(spec.name, spec.host, port, len(have), tuple(sockets)))
        except SlotError:
            for name, group in fresh.items():
                for held in group:
                    if held not in self.groups.get(name, []):
                        for sock in held.sockets:
                            sock.close()
            raise
        gone = [
            held
            for name, group in self.groups.items()
            for held in group
            if held not in fresh.get(name, []) or name not in wanted
        ]
        self.groups = fresh
        return gone

    def for_worker(self, index: int, workers: int) -> list[Held]:
        return [h for group in self.groups.values() for h in group if h.slot % workers == index]

    def held(self) -> list[Held]:
        return [h for group in self.groups.values() for h in group]

    def close_all(self) -> None:
        close(self.held())
        self.groups = {}


def close(held: list[Held]) -> None:
    for h in held:
        for sock in h.sockets:
            sock.close()
