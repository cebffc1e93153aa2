"""One worker's data plane: listen, serve, sweep deadlines, shut down gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from functools import partial
from typing import cast

from rota.config.model import Config
from rota.pool import Pool
from rota.proxy.client import ClientConnection
from rota.proxy.context import ProxyContext

# On shutdown, in-flight exchanges get this long to finish before connections are cut.
GRACE_SECONDS = 5.0


async def serve_http(
    config: Config,
    pool: Pool,
    stop: asyncio.Event,
    *,
    sock: socket.socket | None = None,
    reuse_port: bool = False,
    on_ready: Callable[[ProxyContext, asyncio.Server], None] | None = None,
) -> ProxyContext:
    """Serve until `stop` is set. Binds config.host:port unless a bound `sock` is given."""
    loop = asyncio.get_running_loop()
    ctx = ProxyContext(config, pool, loop)
    # One call per accepted connection, straight to the class: ClientConnection is a
    # duck-typed protocol (see rota.proxy.batching.as_protocol), hence the cast.
    factory = cast("Callable[[], asyncio.Protocol]", partial(ClientConnection, ctx))
    if sock is not None:
        server = await loop.create_server(factory, sock=sock, backlog=1024)
    else:
        server = await loop.create_server(
            factory,
            host=config.host,
            port=config.port,
            reuse_address=True,
            reuse_port=reuse_port or None,
            backlog=1024,
        )
    sweeper = loop.create_task(_sweep_forever(ctx))
    if on_ready is not None:
        on_ready(ctx, server)
    try:
        await stop.wait()
    finally:
        server.close()
        await _drain(ctx)
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        for upstreams in ctx.upstream_pools:
            upstreams.close_all()
    return ctx


async def _sweep_forever(ctx: ProxyContext) -> None:
    interval = ctx.sweep_interval()
    while True:
        await asyncio.sleep(interval)
        ctx.sweep()


async def _drain(ctx: ProxyContext) -> None:
    """Close idle client connections now; let in-flight ones finish, up to the grace time."""
    deadline = ctx.loop.time() + GRACE_SECONDS
    while ctx.clients and ctx.loop.time() < deadline:
        for client in list(ctx.clients):
            client.closing = True
            if not client.queue:
                client.close()
        await asyncio.sleep(0.05)
    for client in list(ctx.clients):
        if client.transport is not None:
            client.transport.abort()
