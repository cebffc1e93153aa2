"""The Python share of one proxied request, without sockets: `python -m bench.hotpath`.

A client connection and a pooled backend connection are driven with in-memory transports:
each round feeds the request wrk sends to the client side and the response nginx sends to
the backend side, exactly the two `data_received` calls of a real keep-alive exchange. What
it times is rota's own Python (parsing, checks, head rewriting, balancing, pooling), none of
the kernel or event loop. It is a tool for working the hot path: a change that helps here
must still be confirmed with `make bench`, where syscalls are most of the cost.

    python -m bench.hotpath               keep-alive: one client connection, many requests
    python -m bench.hotpath --close       one request per client connection (Connection: close)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from tests.support.memory import MemoryTransport

from rota.config.load import build_config
from rota.instance import Runtime
from rota.proxy.client import ClientConnection
from rota.proxy.context import ProxyContext
from rota.proxy.upstream import UpstreamConnection

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
REQUEST_CLOSE = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\r\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 24 Nov 2026 04:00:00 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n"
)


def setup(loop: asyncio.AbstractEventLoop) -> tuple[ProxyContext, list[UpstreamConnection]]:
    data = {"server_list": [{"host": "127.0.0.1", "port": 7001 + i} for i in range(3)]}
    config = build_config(data, "hotpath", {})
    runtime = Runtime(config, loop, log_transitions=False)
    ctx = ProxyContext(config.listeners[0], runtime.pools, loop, runtime.batch)
    upstreams = []
    for backend in runtime.pools["default"].backends:
        idle = backend.idle
        assert idle is not None
        conn = UpstreamConnection(backend, idle)
        conn.connection_made(MemoryTransport())
        idle.release(conn, 0.0)
        upstreams.append(conn)
    return ctx, upstreams


def run_keep_alive(ctx: ProxyContext, upstreams: list[UpstreamConnection], n: int) -> float:
    client = ClientConnection(ctx)
    client_transport = MemoryTransport()
    client.connection_made(client_transport)
    queue = client.queue
    start = time.perf_counter()
    for _ in range(n):
        client.data_received(REQUEST)
        upstream = queue[0].upstream
        assert upstream is not None
        upstream.data_received(RESPONSE)
    elapsed = time.perf_counter() - start
    check(client_transport, n)
    return elapsed / n


def run_close(ctx: ProxyContext, upstreams: list[UpstreamConnection], n: int) -> float:
    transports = []
    start = time.perf_counter()
    for _ in range(n):
        client = ClientConnection(ctx)
        transport = MemoryTransport()
        client.connection_made(transport)
        client.data_received(REQUEST_CLOSE)
        upstream = client.queue[0].upstream
        assert upstream is not None
        upstream.data_received(RESPONSE)
        client.connection_lost(None)
        transports.append(transport)
    elapsed = time.perf_counter() - start
    for transport in transports:
        check(transport, 1)
    return elapsed / n


def check(transport: MemoryTransport, n: int) -> None:
    answers = b"".join(transport.sent).count(b"HTTP/1.1 200 OK\r\n")
    if answers != n:
        raise SystemExit(f"hotpath: expected {n} responses, got {answers}")


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.hotpath", description=__doc__.split("\n")[0])
    p.add_argument("--close", action="store_true", help="one request per client connection")
    p.add_argument("-n", type=int, default=20_000, help="requests per round")
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    loop = asyncio.new_event_loop()
    try:
        ctx, upstreams = setup(loop)
        run = run_close if args.close else run_keep_alive
        run(ctx, upstreams, 2_000)  # warm up
        times = [run(ctx, upstreams, args.n) * 1e6 for _ in range(args.rounds)]
    finally:
        loop.close()
    mode = "close per request" if args.close else "keep-alive"
    print(
        f"{mode}: median {statistics.median(times):.2f} us/request of rota Python "
        f"(min {min(times):.2f}, max {max(times):.2f}, {args.rounds} rounds of {args.n})"
    )


if __name__ == "__main__":
    main()
