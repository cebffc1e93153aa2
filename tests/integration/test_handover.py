"""The pieces of a handover on real sockets: listening sockets passed with SCM_RIGHTS keep
the connections waiting in their accept queue; the supervisor's socket table keeps every
slot open while the workers change; the pid file is removed only by its owner."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

from rota.config.model import Config, ListenerSpec
from rota.handover import Held, Inherited, recv_held, send_held
from rota.pidfile import read_pid, remove_pid, write_pid
from rota.proxy.listener import bind
from rota.reloader import Reloader
from rota.slots import SlotError, SocketTable


def test_a_passed_socket_keeps_the_connections_waiting_in_its_queue() -> None:
    listening = bind("127.0.0.1", 0)
    port = listening[0].getsockname()[1]
    # Connected, not yet accepted: they wait in the kernel's accept queue.
    waiting = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    ours, theirs = socket.socketpair()
    with ours, theirs:
        send_held(ours, [Held("web", "127.0.0.1", port, 0, tuple(listening))])
        for sock in listening:
            sock.close()  # the old holder lets go: the socket lives on in the new one
        (held,) = recv_held(theirs)
    assert (held.name, held.host, held.port, held.slot) == ("web", "127.0.0.1", port, 0)
    (received,) = held.sockets
    received.setblocking(True)
    for i, client in enumerate(waiting):
        conn, _ = received.accept()
        client.sendall(b"%d" % i)
        assert conn.recv(1) == b"%d" % i
        conn.close()
        client.close()
    late = socket.create_connection(("127.0.0.1", port))  # and it still listens
    received.accept()[0].close()
    late.close()
    received.close()


def test_many_sockets_go_in_several_messages() -> None:
    sockets = [socket.socket() for _ in range(300)]
    ours, theirs = socket.socketpair()
    with ours, theirs:
        held = [Held(f"l{i}", "127.0.0.1", 0, 0, (s,)) for i, s in enumerate(sockets)]
        send_held(ours, held)
        got = recv_held(theirs)
    assert [h.name for h in got] == [h.name for h in held]
    for h in got:
        h.sockets[0].close()
    for s in sockets:
        s.close()


def test_inherited_sockets_go_by_name_then_by_address() -> None:
    a, b, c = socket.socket(), socket.socket(), socket.socket()
    inherited = Inherited(
        [
            Held("web", "127.0.0.1", 8080, 0, (a,)),
            Held("web", "127.0.0.1", 8080, 1, (b,)),
            Held("old-name", "127.0.0.1", 9090, 0, (c,)),
        ]
    )
    assert inherited.take_sockets("web", "127.0.0.1", 0) == [a, b]  # port 0: as bound
    assert inherited.take_sockets("renamed", "127.0.0.1", 9090) == [c]
    assert inherited.take_sockets("web", "127.0.0.1", 8080) == []  # taken already
    inherited.close_rest()
    for s in (a, b, c):
        s.close()


def spec(name: str, port: int) -> ListenerSpec:
    return ListenerSpec(name=name, host="127.0.0.1", port=port)


def test_the_socket_table_keeps_every_slot_and_spreads_them_over_the_workers() -> None:
    table = SocketTable()
    assert table.prepare((spec("web", 0),), 3, Inherited()) == []
    port = table.port("web")
    assert [h.port for h in table.held()] == [port] * 3
    assert [h.slot for h in table.for_worker(0, 2)] == [0, 2]  # fewer workers: slot 2 too
    # Fewer workers keep every slot (closing one would reset its queue) ...
    assert table.prepare((spec("web", port),), 1, Inherited()) == []
    assert len(table.held()) == 3
    # ... another rota on the port is an error and binds nothing ...
    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    other.listen()
    taken = other.getsockname()[1]
    try:
        table.prepare((spec("web", port), spec("api", taken)), 1, Inherited())
    except SlotError as exc:
        assert "address already in use" in str(exc)
    else:
        raise AssertionError("bound a port another socket listens on")
    other.close()
    assert set(table.groups) == {"web"}
    # ... and a listener removed is handed back to be closed once workers let go.
    gone = table.prepare((spec("api", 0),), 1, Inherited())
    assert [h.name for h in gone] == ["web", "web", "web"]
    for h in gone:
        for s in h.sockets:
            s.close()
    table.close_all()


def test_the_pid_file_is_removed_only_by_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "rota.pid"
    write_pid(path)
    assert read_pid(path) == os.getpid()
    write_pid(path, 1)  # the new process of an upgrade took it over
    remove_pid(path)
    assert path.exists()
    write_pid(path)
    remove_pid(path)
    assert not path.exists()


def test_reloads_at_once_run_one_after_the_other() -> None:
    async def scenario() -> None:
        events: list[str] = []

        def read() -> Config:
            events.append("read")
            return Config(listeners=(), pools=())

        async def apply(config: Config) -> str | None:
            events.append("apply")
            await asyncio.sleep(0.01)
            events.append("applied")
            return None

        reloader = Reloader(read, apply)
        results = await asyncio.gather(*(reloader.reload_now() for _ in range(3)))
        assert results == [None, None, None]
        assert events == ["read", "apply", "applied"] * 3

    asyncio.run(scenario())
