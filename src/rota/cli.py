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
    Flag(
        "--health-check-timeout",
        "health_check.timeout",
        _seconds,
        "one deadline for a check's connect and response, at most the interval (default 2)",
        "SECONDS",
    ),
    Flag("--health-check-path", "health_check.path", str, "path checked (default /health)", "PATH"),
    Flag(
        "--health-check-status",
        "health_check.status",
        str,
        "statuses that pass, a range or one code (default 200-399)",
        "RANGE",
    ),
    Flag("--rise", "health_check.rise", _int, "passes that bring a backend back (default 2)", "N"),
    Flag("--fall", "health_check.fall", _int, "failures that take a backend out (default 3)", "N"),
    # Limits on what a client may send (docs/configuration.md, `limits`).
    Flag(
        "--max-request-line",
        "limits.max_request_line",
        _int,
        "bytes of the request line; over it 414 (default 8192)",
        "BYTES",
    ),
    Flag(
        "--max-header-bytes",
        "limits.max_header_bytes",
        _int,
        "bytes of the whole request head; over it 431 (default 32768)",
        "BYTES",
    ),
    Flag(
        "--max-headers",
        "limits.max_headers",
        _int,
        "header fields in a request; over it 431, never truncated (default 100)",
        "N",
    ),
    Flag(
        "--max-body-bytes",
        "limits.max_body_bytes",
        _int,
        "bytes of a request body; over it 413 (default unlimited)",
        "BYTES",
    ),
    # Timeouts, all finite by default (docs/configuration.md, `timeouts`).
    Flag(
        "--timeout-connect",
        "timeouts.connect",
        _seconds,
        "connect to a backend; then the next one, then 503 (default 3)",
        "SECONDS",
    ),
    Flag(
        "--timeout-header",
        "timeouts.header",
        _seconds,
        "a client's whole request head, however slowly it trickles; 408 (default 10)",
        "SECONDS",
    ),
    Flag(
        "--timeout-idle",
        "timeouts.idle",
        _seconds,
        "keep-alive silence between a client's requests; silent close (default 60)",
        "SECONDS",
    ),
    Flag(
        "--timeout-response",
        "timeouts.response",
        _seconds,
        "the backend's response head after the request was sent; 504 (default 30)",
        "SECONDS",
    ),
    Flag(
        "--timeout-body",
        "timeouts.body",
        _seconds,
        "silence in either direction mid-body; both sides closed (default 60)",
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
