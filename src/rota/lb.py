"""Run the load balancer in this process: the glue between config and the data plane."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import sys

from rota.config.model import Config, Mode
from rota.health.monitor import HealthMonitor
from rota.pool import Pool
from rota.proxy.context import ProxyContext
from rota.proxy.server import serve_http
from rota.proxy.tcp_server import TcpProxy, serve_tcp
from rota.runtime import loop_factory, raise_fd_limit

log = logging.getLogger("rota")


class ListenError(Exception):
    """The listening socket could not be bound (exit code 1)."""


def run(config: Config) -> int:
    if config.workers > 1:
        from rota.workers import run_supervisor

        return run_supervisor(config)
    raise_fd_limit()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        try:
            runner.run(_main(config))
        except ListenError as exc:
            print(f"rota: {exc}", file=sys.stderr)
            return 1
    return 0


async def _main(config: Config) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    pool = Pool(config.backends)
    # Checker threads start with the server; their transitions come back on this loop.
    health = HealthMonitor(pool, config.health, loop, log=log.info)

    if config.mode is Mode.TCP:
        try:
            await _serve_tcp(config, pool, stop, health)
        finally:
            health.stop()
        return

    def ready(ctx: ProxyContext, server: asyncio.Server) -> None:
        ctx.on_backend_error = health.observe_failure  # passive checks
        health.start()
        print(
            f"rota listening on http://{_hostport(config.host, config.port)} "
            f"({len(pool)} backends)",
            flush=True,
        )

    try:
        await serve_http(config, pool, stop, on_ready=ready)
    except OSError as exc:
        what = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise ListenError(
            f"cannot listen on {_hostport(config.host, config.port)}: {what}"
        ) from None
    finally:
        health.stop()


async def _serve_tcp(
    config: Config, pool: Pool, stop: asyncio.Event, health: HealthMonitor
) -> None:
    def ready(proxy: TcpProxy) -> None:
        health.start()
        # The bound port, not the configured one: `--port 0` picks a free port.
        port = proxy.sockets[0].getsockname()[1] if proxy.sockets else config.port
        print(
            f"rota listening on tcp://{_hostport(config.host, port)} ({len(pool)} backends)",
            flush=True,
        )

    try:
        await serve_tcp(config, pool, stop, on_ready=ready, on_backend_error=health.observe_failure)
    except OSError as exc:
        what = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise ListenError(
            f"cannot listen on {_hostport(config.host, config.port)}: {what}"
        ) from None


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
