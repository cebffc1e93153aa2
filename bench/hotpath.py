"""The Python share of one proxied request, without sockets: `python -m bench.hotpath`.

A client connection and a pooled backend connection are driven with in-memory transports:
each round feeds the request wrk sends to the client side and the response nginx sends to
the backend side, exactly the two `data_received` calls of a real keep-alive exchange. What
it times is rota's own Python (parsing, checks, head rewriting, balancing, pooling), none of
the kernel or event loop. It is a tool for working the hot path: a change that helps here
must still be confirmed with `make bench`, where syscalls are most of the cost.

    python -m bench.hotpath               keep-alive: one client connection, many requests
    python -m bench.hotpath --close       one request per client connection (Connection: close)
    python -m bench.hotpath --routes 50   a listener with 50 routes (25 hosts x 2 path
                                          prefixes), the request matching the last one;
                                          --routes 1 is one catch-all route, same request
    python -m bench.hotpath --algorithm p2c   the pool balanced by another built-in policy
                                          (`hash` keys on the client's address); the
                                          default is the config's, round_robin
    python -m bench.hotpath --access-log FILE  with the access log on (JSON, or
                                          --access-log-format combined), its writer
                                          thread appending to FILE
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import replace
from typing import Any

from bench.machine import require_current_build
from rota.balancing import POLICIES
from rota.config.load import build_config
from rota.config.model import AccessLogSpec
from rota.instance import Runtime
from rota.observe.access_log import AccessLog
from rota.observe.metrics import Stats
from rota.proxy.client import ClientConnection
from rota.proxy.context import ProxyContext
from rota.proxy.upstream import UpstreamConnection

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
REQUEST_CLOSE = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\r\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 24 Nov 2026 04:00:00 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n"
)


# The client's address, as the listener hands it over from accept() (rota.proxy.listener).
PEER = ("127.0.0.1", 40000)

# The request of the --routes runs: it matches the last of the routes.
ROUTED = b"GET /b/x HTTP/1.1\r\nHost: h%d.example.com\r\n\r\n"


class MemoryTransport(asyncio.Transport):
    """Keeps what is written; the proxy sees an open, writable socket. Deliberately the
    least a transport can be (the tests' richer one, tests/support/memory.py, holds its
    protocol and checks every write): what is counted here is rota's own work."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.sent.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass


def site(routes: int) -> dict[str, Any]:
    """A listener with `routes` routes: one catch-all, or hosts x path prefixes."""
    table: list[dict[str, Any]] = [{"pool": "default"}]
    if routes > 1:
        table = [
            {"host": f"h{i}.example.com", "path_prefix": prefix, "pool": "default"}
            for i in range(routes // 2)
            for prefix in ("/a/", "/b/")
        ]
    return {
        "listeners": {"web": {"bind": "127.0.0.1:8080", "routes": table}},
        "pools": {
            "default": {"servers": [{"host": "127.0.0.1", "port": 7001 + i} for i in range(3)]}
        },
    }


def setup(
    loop: asyncio.AbstractEventLoop, routes: int = 0, algorithm: str | None = None
) -> tuple[ProxyContext, list[UpstreamConnection]]:
    data: dict[str, Any] = {
        "server_list": [{"host": "127.0.0.1", "port": 7001 + i} for i in range(3)]
    }
    if routes:
        data = site(routes)
    config = build_config(data, "hotpath", {})
    runtime = Runtime(config, loop, log_transitions=False)
    if algorithm is not None:
        pool = runtime.pools["default"]
        spec = replace(config.pools[0], algorithm=algorithm, hash_key="client_ip")
        pool.policy = POLICIES[algorithm](spec)
        pool.policy.update(pool.backends)
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


def run_keep_alive(
    ctx: ProxyContext, upstreams: list[UpstreamConnection], n: int, request: bytes = REQUEST
) -> float:
    client = ClientConnection(ctx, PEER)
    client_transport = MemoryTransport()
    client.connection_made(client_transport)
    queue = client.queue
    start = time.perf_counter()
    for _ in range(n):
        client.data_received(request)
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
        client = ClientConnection(ctx, PEER)
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
    p.add_argument("--routes", type=int, default=0, help="a listener with this many routes")
    p.add_argument(
        "--algorithm", choices=sorted(POLICIES), help="the pool's policy (default: round_robin)"
    )
    p.add_argument(
        "--metrics", action="store_true", help="count traffic as the admin listener does"
    )
    p.add_argument("--access-log", metavar="FILE", help="an access log appended to FILE")
    p.add_argument("--access-log-format", choices=("json", "combined"), default="json")
    args = p.parse_args()
    require_current_build("bench.hotpath")
    loop = asyncio.new_event_loop()
    access: AccessLog | None = None
    try:
        ctx, upstreams = setup(loop, args.routes, args.algorithm)
        if args.metrics:
            stats = Stats()
            ctx.observers.append(stats.observe)
        if args.access_log:
            access = AccessLog(AccessLogSpec(args.access_log, args.access_log_format), loop)
            ctx.observers.append(access.observe)
            ctx.describe = True
        if args.routes:
            request = ROUTED % (max(1, args.routes // 2) - 1)
            run_keep_alive(ctx, upstreams, 2_000, request)  # warm up
            times = [
                run_keep_alive(ctx, upstreams, args.n, request) * 1e6 for _ in range(args.rounds)
            ]
        else:
            run = run_close if args.close else run_keep_alive
            run(ctx, upstreams, 2_000)  # warm up
            times = [run(ctx, upstreams, args.n) * 1e6 for _ in range(args.rounds)]
    finally:
        if access is not None:
            access.close()
        loop.close()
    mode = "close per request" if args.close else "keep-alive"
    if args.routes:
        mode = f"keep-alive, {args.routes} routes"
    if args.algorithm:
        mode = f"{mode}, {args.algorithm}"
    if args.metrics:
        mode = f"{mode}, metrics on"
    if args.access_log:
        mode = f"{mode}, {args.access_log_format} access log"
    print(
        f"{mode}: median {statistics.median(times):.2f} us/request of rota Python "
        f"(min {min(times):.2f}, max {max(times):.2f}, {args.rounds} rounds of {args.n})"
    )


if __name__ == "__main__":
    main()
