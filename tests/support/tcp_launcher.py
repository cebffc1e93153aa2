"""Phase-1 stand-in for `rota lb --mode tcp`: run rota's TCP relay over given backends.

    python -m tests.support.tcp_launcher --backend 127.0.0.1:5001 [--backend ...] --port 0
        [--connect-timeout S] [--idle-timeout S] [--max-connections N]
        [--send-proxy 1|2] [--accept-proxy]

Prints `rota listening on tcp://HOST:PORT (N backends)` when ready.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

import uvloop

from rota.balancing import RoundRobin
from rota.config.model import BackendSpec
from rota.pool import Pool
from rota.proxy.tcp import TcpProxy, TcpSettings


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--backend", action="append", default=[])
    parser.add_argument("--connect-timeout", type=float, default=3.0)
    parser.add_argument("--idle-timeout", type=float, default=60.0)
    parser.add_argument("--max-connections", type=int, default=10_000)
    parser.add_argument("--send-proxy", type=int, choices=(1, 2), default=None)
    parser.add_argument("--accept-proxy", action="store_true")
    args = parser.parse_args(argv)
    specs = []
    for i, text in enumerate(args.backend):
        host, _, port = text.rpartition(":")
        specs.append(BackendSpec(name=f"b{i}", host=host, port=int(port)))
    pool = Pool(specs)
    settings = TcpSettings(
        connect_timeout=args.connect_timeout,
        idle_timeout=args.idle_timeout,
        max_connections=args.max_connections,
        send_proxy=args.send_proxy,
        accept_proxy=args.accept_proxy,
    )
    proxy = TcpProxy(RoundRobin(pool), settings)
    sockets = proxy.listen(args.host, args.port)
    port = sockets[0].getsockname()[1]
    print(f"rota listening on tcp://{args.host}:{port} ({len(specs)} backends)", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(main(sys.argv[1:]))
