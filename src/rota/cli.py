"""Command line: argv -> config -> run. No logic of its own beyond that mapping.

rota lb [--host H] [--port P] [--config FILE] [flags]   the load balancer
rota backend --host H --port P [--name NAME]             the simple HTTP backend
rota example [--config FILE]                             three backends + the load balancer
rota check-config FILE                                   validate, print the effective config
rota reload --pid-file PATH                              reload a running rota's config file
rota upgrade --pid-file PATH                             replace a running rota, dropping nothing
rota simulate SCENARIO.toml [--json] [--plot DIR] [--real]  policies in a simulation
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rota import __version__, native
from rota.command import COMMANDS, command_parsers, send_command
from rota.config import ConfigError, config_warnings, load_config
from rota.lb_flags import add_lb_flags, integer, lb_overrides, seconds

DEFAULT_CONFIG = "server_db.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rota", description="A load balancer in Python.")
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and build")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    lb = sub.add_parser("lb", help="run the load balancer")
    lb.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help=f"backends and settings, JSON or TOML (default ./{DEFAULT_CONFIG})",
    )
    lb.add_argument(
        "--pid-file",
        default=None,
        metavar="PATH",
        help="write the main process's pid here (kept current across an upgrade) and "
        "listen for `rota reload`/`rota upgrade` on PATH.ctl",
    )
    add_lb_flags(lb)

    backend = sub.add_parser("backend", help="run the simple HTTP backend server")
    backend.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    backend.add_argument("--port", type=integer, required=True, help="port to listen on")
    backend.add_argument("--name", default=None, help="name in responses (default HOST:PORT)")
    backend.add_argument(
        "--health-status",
        type=integer,
        default=200,
        metavar="CODE",
        help="status /health answers, for demos and tests (default 200; see /control/health)",
    )
    backend.add_argument(
        "--health-hang", action="store_true", help="never answer /health (until told otherwise)"
    )
    backend.add_argument(
        "--delay",
        type=seconds,
        default=0.0,
        metavar="SECONDS",
        help="wait this long before every answer but /health: a slow server (default 0)",
    )

    backend.add_argument(
        "--service-time",
        default=None,
        metavar="DIST",
        help="serve in a drawn time: exponential:MEAN, lognormal:MEAN:SIGMA or "
        "constant:SECONDS (replaces --delay; rota simulate --real)",
    )
    backend.add_argument(
        "--concurrency",
        type=integer,
        default=0,
        metavar="N",
        help="with --service-time: at most N served at once, the rest wait in order "
        "(default 0: no limit)",
    )

    example = sub.add_parser("example", help="run three backends and the load balancer")
    example.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE")

    check = sub.add_parser(
        "check-config",
        help="validate a config file and print the effective configuration as TOML",
        description="Validate FILE without starting anything and print the effective "
        "configuration, every default filled in, as TOML with listeners and pools (for a "
        "seed file: its equivalent in that shape). Warnings go to stderr. Exit 0 when valid, "
        "2 with one line naming the file and field when not.",
    )
    check.add_argument("file", metavar="FILE", help="the configuration, JSON or TOML (.toml)")

    command_parsers(sub)
    _simulate_parser(sub)
    return parser


def _simulate_parser(sub: Any) -> None:
    sim = sub.add_parser(
        "simulate",
        help="compare balancing policies on a simulated scenario (docs/simulate.md)",
        description="Run each policy of SCENARIO (TOML) in a discrete-event simulation and "
        "print a table per policy. Exit 2 with a line naming the file, field and line when "
        "the scenario is wrong.",
    )
    sim.add_argument("scenario", metavar="SCENARIO", help="the scenario file (TOML)")
    sim.add_argument("--json", action="store_true", help="print one JSON object instead")
    sim.add_argument("--plot", metavar="DIR", default=None, help="write PNGs to DIR")
    sim.add_argument(
        "--max-requests", type=integer, default=None, metavar="N", help="simulate at most N"
    )
    sim.add_argument("--seed", type=integer, default=None, metavar="N", help="override the seed")
    sim.add_argument(
        "--real",
        action="store_true",
        help="also run it on loopback (rota backend + rota lb) and print both side by side",
    )
    sim.add_argument(
        "--duration",
        type=seconds,
        default=20.0,
        metavar="SECONDS",
        help="--real: seconds of load per policy (default 20)",
    )


class _Version(argparse.Action):
    """`rota --version`: the version, and whether the hot modules run compiled (rota.native)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        print(f"rota {__version__} ({native.describe()})")
        parser.exit()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.command == "lb":
        return _lb(args, argv)
    if args.command == "backend":
        return _backend(args)
    if args.command == "check-config":
        return _check_config(args)
    if args.command in COMMANDS:
        return send_command(args.command, Path(args.pid_file))
    if args.command == "simulate":
        return _simulate(args)
    return _example(args)


def _lb(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from rota import lb
    from rota.runtime import setup_logging
    from rota.service import EarlySignals, ProcessOptions

    early = EarlySignals().install()  # a SIGHUP while starting: reload once started
    setup_logging()
    overrides, flags = lb_overrides(args)
    path = args.config if args.config is not None else DEFAULT_CONFIG
    try:
        config = load_config(Path(path), overrides, flags)
    except ConfigError as exc:
        print(f"rota: {exc}", file=sys.stderr)
        return 2
    for warning in config_warnings(config):
        print(f"rota: warning: {warning}", file=sys.stderr)
    pid_file = Path(args.pid_file).absolute() if args.pid_file is not None else None
    return lb.run(
        config,
        reload=lambda: load_config(Path(path), overrides, flags),
        options=ProcessOptions(pid_file, tuple(argv)),
        early=early,
    )


def _check_config(args: argparse.Namespace) -> int:
    from rota.config.show import to_toml

    try:
        config = load_config(Path(args.file))
    except ConfigError as exc:
        print(f"rota: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(to_toml(config))
    for warning in config_warnings(config):
        print(f"rota: warning: {warning}", file=sys.stderr)
    return 0


def _backend(args: argparse.Namespace) -> int:
    import asyncio
    import errno
    import signal

    from rota.backend.server import serve_backend
    from rota.backend.sickness import Sickness
    from rota.runtime import loop_factory, raise_fd_limit

    if not 200 <= args.health_status <= 599:
        print(
            f"rota backend: --health-status: expected 200-599, got {args.health_status}",
            file=sys.stderr,
        )
        return 2
    slots = None
    if args.service_time is not None or args.concurrency:
        from rota.backend.service import Slots, parse_service

        try:
            draw = parse_service(args.service_time or f"constant:{max(0.0, args.delay)}")
        except ValueError as exc:
            print(f"rota backend: --service-time: {exc}", file=sys.stderr)
            return 2
        if args.concurrency < 0:
            print("rota backend: --concurrency: expected 0 or more", file=sys.stderr)
            return 2
        slots = Slots(draw, args.concurrency)
    sickness = Sickness(args.health_status, args.health_hang)
    name = args.name or (
        f"[{args.host}]:{args.port}" if ":" in args.host else f"{args.host}:{args.port}"
    )

    async def run() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve_backend(args.host, args.port, name, stop, sickness, max(0.0, args.delay), slots)

    raise_fd_limit()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        try:
            runner.run(run())
        except OSError as exc:
            what = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            print(f"rota backend: cannot listen on {name}: {what}", file=sys.stderr)
            return 1
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from rota.simulate.run import Options, main

    options = Options(
        max_requests=args.max_requests,
        seed=args.seed,
        as_json=args.json,
        plot=Path(args.plot) if args.plot else None,
    )
    if args.real:
        from rota.simulate.real import main_real

        return main_real(Path(args.scenario), options, args.duration)
    return main(Path(args.scenario), options)


def _example(args: argparse.Namespace) -> int:
    from rota.example import run_example

    return run_example(Path(args.config))
