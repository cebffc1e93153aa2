"""Run the load balancer in this process: the glue between config and the data plane."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import sys

from rota.config.model import Config
from rota.pool import Pool, State
from rota.proxy.context import ProxyContext
from rota.proxy.server import serve_http
from rota.runtime import loop_factory, raise_fd_limit

log = logging.getLogger("rota")


class ListenError(Exception):
    """The listening socket could not be bound (exit code 1)."""


def run(config: Config) -> int:
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
    pool.subscribe(_log_transition)

    def ready(ctx: ProxyContext, server: asyncio.Server) -> None:
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


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _log_transition(backend: object, old: State, new: State, reason: str) -> None:
    log.info("backend %s %s (%s)", backend, new.value, reason)
