"""The `[admin]` section: where the admin listener (metrics, API, dashboard) listens and
who may use it. Off unless configured.

    [admin]
    bind = "127.0.0.1:9901"
    token_file = "/etc/rota/admin-token"   # optional: every request needs the bearer token

Without a token the admin listener only binds a loopback address: anyone who can reach it
can drain servers. It never shares an address with a traffic listener.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rota.config.listeners import WILDCARDS, parse_bind
from rota.config.model import AdminSpec, ListenerSpec
from rota.config.reader import Reader, show

ADMIN_KEYS = ("bind", "token_file")
MIN_TOKEN = 16  # characters: a token shorter than this is a password, not a secret


def admin(r: Reader, raw: object, listeners: tuple[ListenerSpec, ...]) -> AdminSpec | None:
    if raw is None:
        return None
    section: Mapping[str, Any] = r.section("admin", raw, ADMIN_KEYS)
    if "bind" not in section:
        raise r.fail("admin.bind", 'missing: the admin listener\'s address, e.g. "127.0.0.1:9901"')
    host, port = parse_bind(r, "admin.bind", section["bind"])
    token_file = None
    if "token_file" in section:
        token_file = r.text("admin.token_file", section["token_file"])
        read_token(r, token_file)
    elif not is_loopback(host):
        raise r.fail(
            "admin.bind",
            f"{show(section['bind'])} is not a loopback address: set admin.token_file "
            "(anyone who reaches the admin listener can drain servers)",
        )
    for spec in listeners:
        if port != 0 and spec.port == port and (spec.host == host or WILDCARDS & {spec.host, host}):
            raise r.fail(
                "admin.bind",
                f"{show(section['bind'])} is also bound by listeners.{spec.name}: "
                "the admin listener never shares a port with traffic",
            )
    return AdminSpec(host=host, port=port, token_file=token_file)


def read_token(r: Reader, path: str) -> str:
    """The bearer token: the file's first line, at least MIN_TOKEN characters."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise r.fail("admin.token_file", f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise r.fail("admin.token_file", f"{path}: cannot read: {exc}") from None
    token = text.strip().splitlines()[0].strip() if text.strip() else ""
    if len(token) < MIN_TOKEN:
        raise r.fail(
            "admin.token_file",
            f"{path}: the token must be at least {MIN_TOKEN} characters on the first line",
        )
    return token


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
