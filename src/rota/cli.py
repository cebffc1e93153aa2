"""Command line: argv -> config -> run. No logic of its own beyond that mapping.

rota lb [--host H] [--port P] [--config FILE] [flags]   the load balancer
rota backend --host H --port P [--name NAME]             the simple HTTP backend
rota example [--config FILE]                             three backends + the load balancer
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rota import __version__
from rota.config import ConfigError, load_config

DEFAULT_CONFIG = "server_db.json"


@dataclass(frozen=True)
class Flag:
    """A `rota lb` flag that overrides one config field (dotted name, as in the file)."""

    flag: str
    field: str
    type: Callable[[str], Any]
    help: str
    metavar: str | None = None


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


LB_FLAGS: tuple[Flag, ...] = (
    Flag("--host", "listen.host", str, "address to listen on (default 127.0.0.1)"),
    Flag("--port", "listen.port", _int, "port to listen on (default 5432)"),
    Flag(
        "--health-check-interval",
        "health_check.interval",
        _seconds,
        "seconds between health checks of each backend (default 5)",
        "SECONDS",
    ),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rota", description="A load balancer in Python.")
    parser.add_argument("--version", action="version", version=f"rota {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    lb = sub.add_parser("lb", help="run the load balancer")
    lb.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help=f"backends and settings, JSON or TOML (default ./{DEFAULT_CONFIG})",
    )
    for f in LB_FLAGS:
        lb.add_argument(
            f.flag, dest=f.field, type=f.type, default=None, help=f.help, metavar=f.metavar
        )

    backend = sub.add_parser("backend", help="run the simple HTTP backend server")
    backend.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    backend.add_argument("--port", type=_int, required=True, help="port to listen on")
    backend.add_argument("--name", default=None, help="name in responses (default HOST:PORT)")

    example = sub.add_parser("example", help="run three backends and the load balancer")
    example.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "lb":
        return _lb(args)
    if args.command == "backend":
        return _backend(args)
    return _example(args)


def _lb(args: argparse.Namespace) -> int:
    from rota import lb
    from rota.runtime import setup_logging

    setup_logging()
    overrides: dict[str, object] = {}
    flags: dict[str, str] = {}
    for f in LB_FLAGS:
        value = getattr(args, f.field)
        if value is not None:
            overrides[f.field] = value
            flags[f.field] = f.flag
    path = args.config if args.config is not None else DEFAULT_CONFIG
    try:
        config = load_config(Path(path), overrides, flags)
    except ConfigError as exc:
        print(f"rota: {exc}", file=sys.stderr)
        return 2
    return lb.run(config)


def _backend(args: argparse.Namespace) -> int:
    import asyncio
    import errno
    import signal

    from rota.backend.server import serve_backend
    from rota.runtime import loop_factory, raise_fd_limit

    name = args.name or (
        f"[{args.host}]:{args.port}" if ":" in args.host else f"{args.host}:{args.port}"
    )

    async def run() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve_backend(args.host, args.port, name, stop)

    raise_fd_limit()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        try:
            runner.run(run())
        except OSError as exc:
            what = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            print(f"rota backend: cannot listen on {name}: {what}", file=sys.stderr)
            return 1
    return 0


def _example(args: argparse.Namespace) -> int:
    from rota.example import run_example

    return run_example(Path(args.config))
