"""The floor of an HTTP proxy built on uvloop and httptools: a measuring stick, not a proxy.

Each client connection is paired with one backend connection (round robin when it is
accepted), bytes are passed on as they arrive, and every chunk in either direction is fed
to an httptools parser that has no callbacks. That is the least any HTTP proxy on this
stack does per request: receive, parse, send, both ways. It reads no field, rewrites no
head, adds no X-Forwarded-For, keeps no pool, sets no deadline, and assumes the backends
are up. Whatever rota costs above this line is its own code; what this line costs is
CPython, uvloop and llhttp. With --fields the parsers also hand each head's target and
fields over to Python, as httptools does for any proxy that reads them.

    python bench/floor.py --port 6800 --backends 7001,7002,7003

It runs until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
from collections.abc import Callable, Iterator, Sequence
from typing import cast

import httptools
import uvloop

LOOPBACK = "127.0.0.1"


class _NoCallbacks:
    """An httptools protocol without callbacks: llhttp parses and calls nothing back."""


class _Fields:
    """With --fields: the callbacks that collect a head's target and fields, as any proxy
    that reads them must (and nothing is done with them)."""

    __slots__ = ("fields", "url")

    def __init__(self) -> None:
        self.url = b""
        self.fields: list[tuple[bytes, bytes]] = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name, value))

    def on_headers_complete(self) -> None:
        self.url = b""
        self.fields = []


Callbacks = Callable[[], object]


class _Upstream(asyncio.Protocol):
    def __init__(self, client: asyncio.Transport, callbacks: Callbacks) -> None:
        self.client = client
        self.feed: Callable[[bytes], None] = httptools.HttpResponseParser(callbacks()).feed_data

    def data_received(self, data: bytes) -> None:
        self.feed(data)
        self.client.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.close()


class _Client(asyncio.Protocol):
    def __init__(self, backends: Iterator[int], callbacks: Callbacks) -> None:
        self.backends = backends
        self.callbacks = callbacks
        self.feed: Callable[[bytes], None] = httptools.HttpRequestParser(callbacks()).feed_data
        self.upstream: asyncio.Transport | None = None
        self.early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        client = cast(asyncio.Transport, transport)
        asyncio.get_running_loop().create_task(self._connect(client))

    async def _connect(self, client: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        try:
            upstream, _ = await loop.create_connection(
                lambda: _Upstream(client, self.callbacks), LOOPBACK, next(self.backends)
            )
        except OSError:
            client.close()
            return
        if client.is_closing():
            upstream.close()
            return
        self.upstream = upstream
        for data in self.early:
            upstream.write(data)
        self.early = []

    def data_received(self, data: bytes) -> None:
        self.feed(data)
        if self.upstream is None:
            self.early.append(data)
        else:
            self.upstream.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.upstream is not None:
            self.upstream.close()


async def serve(port: int, backends: Sequence[int], callbacks: Callbacks) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    cycle = itertools.cycle(backends)
    server = await loop.create_server(
        lambda: _Client(cycle, callbacks), LOOPBACK, port, backlog=4096
    )
    async with server:
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="bench/floor.py", description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--backends", required=True, help="comma-separated ports on 127.0.0.1")
    p.add_argument("--fields", action="store_true", help="collect each head's fields too")
    args = p.parse_args(argv)
    backends = [int(x) for x in args.backends.split(",")]
    uvloop.run(serve(args.port, backends, _Fields if args.fields else _NoCallbacks))


if __name__ == "__main__":
    main()
