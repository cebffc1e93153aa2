"""The Runtime in this process over loopback: several listeners (HTTP and TCP) routing to
named pools of real backend processes, the end of every exchange reported once, and
`apply` moving a running instance to a new configuration without a restart."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from dataclasses import replace

import pytest

from rota.config.model import BackendSpec, Config, ListenerSpec, Mode, PoolSpec, RouteSpec
from rota.instance import Runtime
from rota.outcome import End, Outcome
from rota.runtime import loop_factory
from tests.support.http import Client, Response
from tests.support.procs import Proc, start_backend


@pytest.fixture
def four() -> Iterator[list[tuple[Proc, int]]]:
    started = [start_backend(name=n) for n in ("a1", "a2", "b1", "b2")]
    yield started
    for proc, _ in started:
        proc.stop()


def server(name: str, port: int) -> BackendSpec:
    return BackendSpec(name, "127.0.0.1", port)


def site(ports: dict[str, int]) -> Config:
    pools = (
        PoolSpec("a", (server("a1", ports["a1"]), server("a2", ports["a2"]))),
        PoolSpec("b", (server("b1", ports["b1"]),)),
    )
    web = ListenerSpec(
        "web",
        "127.0.0.1",
        0,
        routes=(RouteSpec(pool="b", host="b.test"), RouteSpec(pool="a")),
    )
    admin = ListenerSpec("other", "127.0.0.1", 0, routes=(RouteSpec(pool="b"),))
    tcp = ListenerSpec("raw", "127.0.0.1", 0, protocol=Mode.TCP, pool="a")
    return Config(listeners=(web, admin, tcp), pools=pools, source="site")


def port_of(runtime: Runtime, name: str) -> int:
    return int(runtime.listeners[name].sockets[0].getsockname()[1])


def fetch(port: int, host: str = "x.test") -> Response:
    with Client(port) as c:
        return c.request("GET", "/", headers={"Host": host, "Connection": "close"})


def served_by(response: Response) -> str:
    return response.body.decode().removeprefix("Hello from ").strip()


def tcp_fetch(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def run(coro: object) -> None:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(coro)  # type: ignore[arg-type]


def test_listeners_route_to_their_pools_and_every_exchange_ends_once(
    four: list[tuple[Proc, int]],
) -> None:
    ports = {name: p for name, (_, p) in zip(("a1", "a2", "b1", "b2"), four, strict=True)}

    async def scenario() -> None:
        runtime = Runtime(site(ports), asyncio.get_running_loop())
        ended: list[Outcome] = []
        runtime.observers.append(ended.append)
        await runtime.start()
        try:
            web, other, raw = (port_of(runtime, n) for n in ("web", "other", "raw"))
            got = [served_by(await asyncio.to_thread(fetch, web)) for _ in range(4)]
            assert got == ["a1", "a2", "a1", "a2"]
            assert served_by(await asyncio.to_thread(fetch, web, "B.Test:80")) == "b1"
            assert served_by(await asyncio.to_thread(fetch, other)) == "b1"
            assert b"Hello from a" in await asyncio.to_thread(tcp_fetch, raw)
            await asyncio.sleep(0.1)
        finally:
            await runtime.stop()
        http = [o for o in ended if o.listener in ("web", "other")]
        assert len(http) == 6
        assert all(o.end is End.COMPLETE and o.status == 200 for o in http)
        assert all(o.finished >= o.started > 0 for o in http)
        assert [o.backend.name for o in http if o.backend] == ["a1", "a2", "a1", "a2", "b1", "b1"]
        assert all(o.bytes_out > 0 for o in http)
        tcp = [o for o in ended if o.listener == "raw"]
        assert len(tcp) == 1 and tcp[0].bytes_in > 0 and tcp[0].bytes_out > 0
        assert tcp[0].pool is not None and tcp[0].pool.name == "a"
        # Nothing is left counted in flight.
        assert all(b.active == 0 for p in runtime.pools.values() for b in p.backends)

    run(scenario())


def test_apply_changes_servers_routes_and_listeners_while_running(
    four: list[tuple[Proc, int]],
) -> None:
    ports = {name: p for name, (_, p) in zip(("a1", "a2", "b1", "b2"), four, strict=True)}

    async def scenario() -> None:
        config = site(ports)
        runtime = Runtime(config, asyncio.get_running_loop())
        await runtime.start()
        try:
            web = port_of(runtime, "web")
            other = port_of(runtime, "other")
            # Pool b gains b2; pool a loses a2; listener "other" goes, "new" comes; the
            # web listener's catch-all now goes to pool b.
            pools = (
                PoolSpec("a", (server("a1", ports["a1"]),)),
                PoolSpec("b", (server("b1", ports["b1"]), server("b2", ports["b2"]))),
            )
            web_spec = replace(config.listeners[0], port=web, routes=(RouteSpec(pool="b"),))
            new = ListenerSpec("new", "127.0.0.1", 0, routes=(RouteSpec(pool="a"),))
            tcp = replace(config.listeners[2], port=port_of(runtime, "raw"))
            await runtime.apply(replace(config, listeners=(web_spec, new, tcp), pools=pools))
            got = [served_by(await asyncio.to_thread(fetch, web)) for _ in range(4)]
            assert sorted(got) == ["b1", "b1", "b2", "b2"]
            assert served_by(await asyncio.to_thread(fetch, port_of(runtime, "new"))) == "a1"
            assert runtime.pools["a"].get("a2") is None
            with pytest.raises(OSError):
                await asyncio.to_thread(fetch, other)
        finally:
            await runtime.stop()

    run(scenario())


def test_a_second_listener_on_a_taken_address_fails_to_bind_and_binds_nothing(
    four: list[tuple[Proc, int]],
) -> None:
    async def scenario() -> None:
        taken = four[0][1]
        config = site({n: p for n, (_, p) in zip(("a1", "a2", "b1", "b2"), four, strict=True)})
        clash = replace(config.listeners[1], port=taken)
        runtime = Runtime(
            replace(config, listeners=(config.listeners[0], clash)), asyncio.get_running_loop()
        )
        from rota.instance import ListenError

        with pytest.raises(ListenError, match=f"cannot listen on 127.0.0.1:{taken}"):
            runtime.bind()
        assert runtime.listeners == {}

    run(scenario())


def test_each_listener_has_its_own_connection_limit_and_timeouts(
    four: list[tuple[Proc, int]],
) -> None:
    from rota.config.model import LimitSpec, TimeoutSpec

    ports = {name: p for name, (_, p) in zip(("a1", "a2", "b1", "b2"), four, strict=True)}

    async def scenario() -> None:
        config = site(ports)
        tight = replace(
            config.listeners[1],
            limits=LimitSpec(max_connections=1),
            timeouts=TimeoutSpec(idle=0.3),
        )
        config = replace(config, listeners=(config.listeners[0], tight))
        runtime = Runtime(config, asyncio.get_running_loop())
        await runtime.start()
        try:
            web, other = port_of(runtime, "web"), port_of(runtime, "other")
            held = await asyncio.to_thread(Client, other)  # takes the one connection
            kept = await asyncio.to_thread(Client, web)
            try:
                await asyncio.sleep(0.05)
                # At "other"'s cap the idle held connection makes room (issue 20).
                assert (await asyncio.to_thread(fetch, other)).status == 200
                assert await asyncio.to_thread(held.sock.recv, 1) == b""
                # The other listener's limit is its own: it serves, closing nothing.
                assert (await asyncio.to_thread(fetch, web)).status == 200
                kept.sock.setblocking(False)
                with pytest.raises(BlockingIOError):
                    kept.sock.recv(1)
            finally:
                held.close()
                kept.close()
            # The idle timeout of "other" (0.3 s) closes an idle connection.
            idle = await asyncio.to_thread(Client, other)
            try:
                await asyncio.sleep(1.0)
                assert await asyncio.to_thread(idle.sock.recv, 1) == b""
            finally:
                idle.close()
        finally:
            await runtime.stop()

    run(scenario())
