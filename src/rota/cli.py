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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rota import __version__, native
from rota.command import COMMANDS, command_parsers, send_command
from rota.config import ConfigError, config_warnings, load_config

DEFAULT_CONFIG = "server_db.json"


@dataclass(frozen=True)
class Flag:
    """A `rota lb` flag that overrides one config field (dotted name, as in the file)."""

    flag: str
    field: str
    type: Callable[[str], Any]  # unused for a switch
    help: str
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    action: str | None = None  # "store_true" for a switch
    aliases: tuple[str, ...] = ()  # other spellings of the same flag


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


def _workers(text: str) -> int | str:
    if text == "auto":
        return text
    return _int(text)


LB_FLAGS: tuple[Flag, ...] = (
    Flag(
        "--admin",
        "admin.bind",
        str,
        "serve metrics, the admin API and the dashboard on this address (default: off)",
        "HOST:PORT",
    ),
    Flag(
        "--admin-token-file",
        "admin.token_file",
        str,
        "admin requests need 'Authorization: Bearer <the token in this file>'",
        "FILE",
    ),
    Flag(
        "--workers",
        "workers",
        _workers,
        "worker processes, or 'auto' for one per CPU (default 1)",
        "N|auto",
    ),
    Flag(
        "--drain-timeout",
        "drain_timeout",
        _seconds,
        "on stop or upgrade, seconds that requests and tunnels in flight get to finish "
        "(default 30)",
        "SECONDS",
    ),
    # --host, --port, --mode and the PROXY flags set the seed's one listener; a file with
    # listeners sets them per listener instead, and refuses them (rota.config.load).
    Flag(
        "--host",
        "listen.host",
        str,
        "address to listen on (default 127.0.0.1; seed files only, else bind in the file)",
        "HOST",
    ),
    Flag(
        "--port",
        "listen.port",
        _int,
        "port to listen on (default 5432; seed files only, else bind in the file)",
        "PORT",
    ),
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
        aliases=("--connect-timeout",),
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
        "keep-alive silence between requests (tcp mode: no byte either way); silent close "
        "(default 60)",
        "SECONDS",
        aliases=("--idle-timeout",),
    ),
    Flag(
        "--timeout-response",
        "timeouts.response",
        _seconds,
        "the backend's response head after the request was sent; 504 (default 60)",
        "SECONDS",
    ),
    Flag(
        "--timeout-body",
        "timeouts.body",
        _seconds,
        "silence in either direction mid-body; both sides closed (default 60)",
        "SECONDS",
    ),
    Flag(
        "--timeout-tunnel",
        "timeouts.tunnel",
        _seconds,
        "silence both ways in a WebSocket tunnel after its 101; both sides closed (default 3600)",
        "SECONDS",
    ),
    Flag(
        "--health-check-type",
        "health_check.type",
        str,
        "http (GET the health path, default) or tcp (connect only)",
        choices=("http", "tcp"),
    ),
    Flag(
        "--mode",
        "mode",
        str,
        "http (default) or tcp (seed files only, else protocol in the file)",
        choices=("http", "tcp"),
    ),
    Flag(
        "--max-connections",
        "limits.max_connections",
        _int,
        "concurrent client connections per worker; the excess waits in the listen "
        "backlog; http mode: the oldest idle or half-sent connection makes room first "
        "(default 10000)",
        "N",
    ),
    Flag(
        "--send-proxy",
        "send_proxy",
        str,
        "tcp mode: send a PROXY protocol header of this version to backends",
        choices=("v1", "v2"),
    ),
    Flag(
        "--accept-proxy",
        "accept_proxy",
        str,
        "tcp mode: expect a PROXY protocol header (v1 or v2) on every client connection",
        action="store_true",
    ),
    # The access log (docs/configuration.md, `[access_log]`).
    Flag(
        "--access-log",
        "access_log.path",
        str,
        "one line per request (tcp: per connection) appended to PATH, '-' for stdout "
        "(default: no access log)",
        "PATH",
    ),
    Flag(
        "--access-log-format",
        "access_log.format",
        str,
        "json (default) or combined (the nginx/Apache line)",
        choices=("json", "combined"),
    ),
)


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
    for f in LB_FLAGS:
        if f.action is not None:
            lb.add_argument(
                f.flag, *f.aliases, dest=f.field, action=_Switch, default=None, help=f.help
            )
            continue
        lb.add_argument(
            f.flag,
            *f.aliases,
            dest=f.field,
            action=_Store,
            type=f.type,
            default=None,
            help=f.help,
            metavar=f.metavar,
            choices=f.choices,
        )

    backend = sub.add_parser("backend", help="run the simple HTTP backend server")
    backend.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    backend.add_argument("--port", type=_int, required=True, help="port to listen on")
    backend.add_argument("--name", default=None, help="name in responses (default HOST:PORT)")
    backend.add_argument(
        "--health-status",
        type=_int,
        default=200,
        metavar="CODE",
        help="status /health answers, for demos and tests (default 200; see /control/health)",
    )
    backend.add_argument(
        "--health-hang", action="store_true", help="never answer /health (until told otherwise)"
    )
    backend.add_argument(
        "--delay",
        type=_seconds,
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
        type=_int,
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
        "--max-requests", type=_int, default=None, metavar="N", help="simulate at most N"
    )
    sim.add_argument("--seed", type=_int, default=None, metavar="N", help="override the seed")
    sim.add_argument(
        "--real",
        action="store_true",
        help="also run it on loopback (rota backend + rota lb) and print both side by side",
    )
    sim.add_argument(
        "--duration",
        type=_seconds,
        default=20.0,
        metavar="SECONDS",
        help="--real: seconds of load per policy (default 20)",
    )


# The spelling of each flag as typed, by field, so an error names the flag the user typed
# (--connect-timeout and --timeout-connect set one field).
TYPED = "typed_flags"


def _remember(namespace: argparse.Namespace, dest: str, option_string: str | None) -> None:
    typed = getattr(namespace, TYPED, None)
    if typed is None:
        typed = {}
        setattr(namespace, TYPED, typed)
    if option_string is not None:
        typed[dest] = option_string


class _Store(argparse.Action):
    """Stores the value (a switch: True) and remembers the spelling typed."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, True if self.nargs == 0 else values)
        _remember(namespace, self.dest, option_string)


class _Switch(_Store):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)


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


def lb_overrides(args: argparse.Namespace) -> tuple[dict[str, object], dict[str, str]]:
    """The config fields the given flags set, and which flag set each, as typed (for errors)."""
    overrides: dict[str, object] = {}
    flags: dict[str, str] = {}
    typed: dict[str, str] = getattr(args, TYPED, None) or {}
    for f in LB_FLAGS:
        value = getattr(args, f.field)
        if value is not None:
            overrides[f.field] = value
            flags[f.field] = typed.get(f.field, f.flag)
    return overrides, flags


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
