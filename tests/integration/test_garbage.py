"""A closed client connection is freed at once by reference counting: nothing of it is left
in reference cycles for the garbage collector, whose collections would otherwise run every
few dozen connections (docs/architecture.md, "No work for the garbage collector").

The load balancer runs in this process (the same `Runtime` as `rota lb`, on uvloop when
installed) so the collector can be asked what it finds; the backends are real processes.
"""

from __future__ import annotations

import asyncio
import gc

from rota.config.load import build_config
from rota.instance import Runtime
from rota.runtime import loop_factory
from tests.support.procs import Proc

REQUEST = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"


async def _request(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(REQUEST)
    answer = await asyncio.wait_for(reader.read(), 5)  # until rota closes
    writer.close()
    await writer.wait_closed()
    return answer


async def _rota_garbage(backend_ports: list[int], connections: int) -> list[str]:
    data = {
        "server_list": [{"host": "127.0.0.1", "port": p} for p in backend_ports],
        "listen": {"host": "127.0.0.1", "port": 0},
    }
    config = build_config(data, "test", {})
    runtime = Runtime(config, asyncio.get_running_loop())
    await runtime.start()
    port = runtime.listeners["default"].sockets[0].getsockname()[1]
    try:
        for _ in range(5):  # pooled backend connections exist from here on
            assert b" 200 " in await _request(port)
        gc.collect()
        gc.disable()
        try:
            for _ in range(connections):
                assert b" 200 " in await _request(port)
            await asyncio.sleep(0.1)  # connection_lost callbacks have run
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            # The client side of this test (asyncio streams) is not rota's business.
            return [
                f"{type(o).__module__}.{type(o).__qualname__}"
                for o in gc.garbage
                if type(o).__module__.startswith(("rota.", "httptools"))
            ]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
    finally:
        await runtime.stop()


def test_closed_client_connections_leave_nothing_for_the_collector(
    backends: list[tuple[Proc, int]],
) -> None:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        found = runner.run(_rota_garbage([p for _, p in backends], connections=50))
    assert found == []
