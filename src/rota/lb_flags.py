"""The flags of `rota lb`: one table (LB_FLAGS), each flag overriding one config field.

The table is the one place a flag is declared: `add_lb_flags` puts it on the parser,
`lb_overrides` turns what was given into the overrides and the flag spellings
`rota.config.load_config` takes, so that an error names the flag as the user typed it.
The argument types (`seconds`, `integer`) serve the other commands' flags too.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


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


def seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _workers(text: str) -> int | str:
    if text == "auto":
        return text
    return integer(text)


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
        seconds,
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
        integer,
        "port to listen on (default 5432; seed files only, else bind in the file)",
        "PORT",
    ),
    Flag(
        "--health-check-interval",
        "health_check.interval",
        seconds,
        "seconds between health checks of each backend (default 5)",
        "SECONDS",
    ),
    Flag(
        "--health-check-timeout",
        "health_check.timeout",
        seconds,
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
    Flag(
        "--rise", "health_check.rise", integer, "passes that bring a backend back (default 2)", "N"
    ),
    Flag(
        "--fall", "health_check.fall", integer, "failures that take a backend out (default 3)", "N"
    ),
    # Limits on what a client may send (docs/configuration.md, `limits`).
    Flag(
        "--max-request-line",
        "limits.max_request_line",
        integer,
        "bytes of the request line; over it 414 (default 8192)",
        "BYTES",
    ),
    Flag(
        "--max-header-bytes",
        "limits.max_header_bytes",
        integer,
        "bytes of the whole request head; over it 431 (default 32768)",
        "BYTES",
    ),
    Flag(
        "--max-headers",
        "limits.max_headers",
        integer,
        "header fields in a request; over it 431, never truncated (default 100)",
        "N",
    ),
    Flag(
        "--max-body-bytes",
        "limits.max_body_bytes",
        integer,
        "bytes of a request body; over it 413 (default unlimited)",
        "BYTES",
    ),
    # Timeouts, all finite by default (docs/configuration.md, `timeouts`).
    Flag(
        "--timeout-connect",
        "timeouts.connect",
        seconds,
        "connect to a backend; then the next one, then 503 (default 3)",
        "SECONDS",
        aliases=("--connect-timeout",),
    ),
    Flag(
        "--timeout-header",
        "timeouts.header",
        seconds,
        "a client's whole request head, however slowly it trickles; 408 (default 10)",
        "SECONDS",
    ),
    Flag(
        "--timeout-idle",
        "timeouts.idle",
        seconds,
        "keep-alive silence between requests (tcp mode: no byte either way); silent close "
        "(default 60)",
        "SECONDS",
        aliases=("--idle-timeout",),
    ),
    Flag(
        "--timeout-response",
        "timeouts.response",
        seconds,
        "the backend's response head after the request was sent; 504 (default 60)",
        "SECONDS",
    ),
    Flag(
        "--timeout-body",
        "timeouts.body",
        seconds,
        "silence in either direction mid-body; both sides closed (default 60)",
        "SECONDS",
    ),
    Flag(
        "--timeout-tunnel",
        "timeouts.tunnel",
        seconds,
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
        integer,
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


def add_lb_flags(parser: argparse.ArgumentParser) -> None:
    """Every flag of LB_FLAGS on `rota lb`'s parser; a flag not given leaves its field None."""
    for f in LB_FLAGS:
        if f.action is not None:
            parser.add_argument(
                f.flag, *f.aliases, dest=f.field, action=_Switch, default=None, help=f.help
            )
            continue
        parser.add_argument(
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
