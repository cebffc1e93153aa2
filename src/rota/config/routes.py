"""An HTTP listener's routes: match keys, one action, header edits.

Everything a route holds is checked here so the runtime can compile it without checks of
its own: host names are lower-case and valid, paths are visible ASCII starting with "/",
methods and header names are tokens (RFC 9110 5.6.2), values carry no CR, LF or NUL.
"""

from __future__ import annotations

import ipaddress
import string
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from rota.config.model import HeaderEdits, Redirect, Respond, RouteSpec
from rota.config.reader import Reader, show
from rota.http.edits import RESERVED

ROUTE_KEYS = (
    "host",
    "path",
    "path_prefix",
    "methods",
    "headers",
    "pool",
    "strip_prefix",
    "request_headers",
    "response_headers",
    "redirect",
    "respond",
)
MATCH_KEYS = ("host", "path", "path_prefix", "methods", "headers")
ACTIONS = ("pool", "redirect", "respond")
POOL_ONLY = ("strip_prefix", "request_headers")
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
# RFC 9110 5.6.2: tchar.
TOKEN = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")
_LABEL = frozenset(string.ascii_lowercase + string.digits + "-_")
# Fields a route may not set or remove: they frame the message or belong to one hop
# (RFC 9110 7.6.1, RFC 9112 6); rota writes them itself. Host is the request's target.
# The fields rota writes itself (rota.http.edits.RESERVED: framing, hop-by-hop, forwarding);
# Host too in a request, whose one Host is the client's (RFC 9112 3.2).
FRAMING = RESERVED
REQUEST_ONLY = frozenset({"host"})
T = TypeVar("T")


def is_token(text: str) -> bool:
    return bool(text) and all(c in TOKEN for c in text)


def route(r: Reader, path: str, raw: object, pools: Mapping[str, object]) -> RouteSpec:
    """One route at `path` (`listeners.web.routes[2]`); `pools` are the names defined."""
    entry = r.section(path, raw, ROUTE_KEYS)
    actions = [key for key in ACTIONS if key in entry]
    if not actions:
        raise r.fail(path, "no action: give one of pool, redirect or respond")
    if len(actions) > 1:
        raise r.fail(
            f"{path}.{actions[1]}",
            f"a route has one action; this one also has {actions[0]}",
        )
    action = actions[0]
    for key in POOL_ONLY:
        if key in entry and action != "pool":
            raise r.fail(f"{path}.{key}", f"only with pool (this route has {action})")

    def read(key: str, reader: Callable[[Reader, str, Any], T], default: T) -> T:
        return reader(r, f"{path}.{key}", entry[key]) if key in entry else default

    exact = read("path", _path, None)
    prefix = read("path_prefix", _path, None)
    if exact is not None and prefix is not None:
        raise r.fail(f"{path}.path_prefix", "give path or path_prefix, not both")
    pool = None
    if action == "pool":
        pool = r.text(f"{path}.pool", entry["pool"])
        if pool not in pools:
            raise r.fail(f"{path}.pool", missing_pool(pool, pools))
    return RouteSpec(
        pool=pool,
        host=read("host", _host, None),
        path=exact,
        path_prefix=prefix,
        methods=read("methods", _methods, ()),
        headers=read("headers", _match_headers, ()),
        strip_prefix=read("strip_prefix", _path, None),
        request_headers=read("request_headers", _request_edits, HeaderEdits()),
        response_headers=read("response_headers", _response_edits, HeaderEdits()),
        redirect=read("redirect", _redirect, None),
        respond=read("respond", _respond, None),
    )


def missing_pool(name: str, pools: Mapping[str, object]) -> str:
    known = ", ".join(sorted(pools)) or "none defined"
    return f"no pool named {show(name)} (pools: {known})"


def _path(r: Reader, at: str, value: object) -> str:
    # Matched against the request's path as it arrives (not percent-decoded, no query),
    # which is visible ASCII: a character outside it could never match.
    text = r.text(at, value)
    if not text.startswith("/") or not all("!" <= c <= "~" for c in text) or "?" in text:
        raise r.fail(
            at,
            f'expected a path starting with "/", visible ASCII without "?" (percent-encode '
            f"the rest), got {show(text)}",
        )
    return text


def _host(r: Reader, at: str, value: object) -> str:
    """A host name, an IPv4 address, `[v6]`, or `*.suffix`; lower-case, no trailing dot."""
    text = r.text(at, value).lower()
    expected = f'expected a host name like "example.com" or "*.example.com", got {show(value)}'
    if text.startswith("[") and text.endswith("]"):
        try:
            ipaddress.IPv6Address(text[1:-1])
        except ValueError:
            raise r.fail(at, expected) from None
        return text
    name = text.removesuffix(".")
    labels = name.split(".")
    if labels[0] == "*":
        labels = labels[1:]  # one or more labels before the suffix, never the suffix itself
    if not labels or len(name) > 253:
        raise r.fail(at, expected)
    for label in labels:
        if not label or len(label) > 63 or not set(label) <= _LABEL:
            raise r.fail(at, expected)
    return name


def _methods(r: Reader, at: str, value: object) -> tuple[str, ...]:
    items = r.items(at, value, "methods")
    if not items:
        raise r.fail(at, "expected at least one method (leave methods out to match any)")
    methods: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, str) or not is_token(item):
            raise r.fail(f"{at}[{i}]", f"expected a method like GET, got {show(item)}")
        method = item.upper()
        if method in methods:
            raise r.fail(f"{at}[{i}]", f"{show(method)} is listed twice")
        methods.append(method)
    return tuple(methods)


def _field_name(r: Reader, at: str, name: str) -> str:
    if not is_token(name):
        raise r.fail(at, f"expected a header field name (a token), got {show(name)}")
    return name.lower()


def _field_value(r: Reader, at: str, value: object) -> str:
    # RFC 9110 5.5: no CR, LF or NUL (nor other controls but HTAB); no surrounding
    # whitespace, which a recipient trims away.
    if not isinstance(value, str):
        raise r.fail(at, f"expected a string, got {show(value)}")
    if not all(c == "\t" or " " <= c <= "~" or "\x80" <= c <= "\xff" for c in value):
        raise r.fail(at, f"expected printable characters (no CR, LF, NUL), got {show(value)}")
    if value != value.strip(" \t"):
        raise r.fail(at, f"leading or trailing whitespace never reaches the peer: {show(value)}")
    return value


def _match_headers(r: Reader, at: str, value: object) -> tuple[tuple[str, str], ...]:
    table = r.table(at, value)
    if not table:
        raise r.fail(at, "expected at least one field (leave headers out to match any)")
    pairs: dict[str, str] = {}
    for name, field_value in table.items():
        lower = _field_name(r, at, name)
        if lower in pairs:
            raise r.fail(at, f"{show(name)} is listed twice (names are case-insensitive)")
        pairs[lower] = _field_value(r, f"{at}.{name}", field_value)
    return tuple(pairs.items())


def _request_edits(r: Reader, at: str, value: object) -> HeaderEdits:
    return _edits(r, at, value, request=True)


def _response_edits(r: Reader, at: str, value: object) -> HeaderEdits:
    return _edits(r, at, value, request=False)


def _edits(r: Reader, at: str, value: object, *, request: bool) -> HeaderEdits:
    section = r.section(at, value, ("set", "remove"))
    refused = FRAMING | REQUEST_ONLY if request else FRAMING

    def name_of(where: str, name: object) -> str:
        if not isinstance(name, str):
            raise r.fail(where, f"expected a header field name, got {show(name)}")
        lower = _field_name(r, where, name)
        if lower in refused:
            raise r.fail(where, f"{show(name)} is not for routes to edit: rota writes it itself")
        return lower

    sets: dict[str, tuple[str, str]] = {}
    for name, field_value in r.table(f"{at}.set", section.get("set", {})).items():
        lower = name_of(f"{at}.set", name)
        if lower in sets:
            raise r.fail(f"{at}.set", f"{show(name)} is listed twice (names are case-insensitive)")
        sets[lower] = (name, _field_value(r, f"{at}.set.{name}", field_value))
    removes: list[str] = []
    for i, name in enumerate(r.items(f"{at}.remove", section.get("remove", []), "names")):
        lower = name_of(f"{at}.remove[{i}]", name)
        if lower in sets:
            raise r.fail(f"{at}.remove[{i}]", f"{show(name)} is also set: set replaces it")
        if lower not in removes:
            removes.append(lower)
    return HeaderEdits(set=tuple(sets.values()), remove=tuple(removes))


def _redirect(r: Reader, at: str, value: object) -> Redirect:
    section = r.section(at, value, ("location", "status"))
    if "location" not in section:
        raise r.fail(f"{at}.location", "missing")
    location = r.text(f"{at}.location", section["location"])
    if not all("!" <= c <= "~" for c in location):
        raise r.fail(
            f"{at}.location",
            f"expected a URL of visible ASCII (percent-encode the rest), got {show(location)}",
        )
    status = section.get("status", 302)
    if isinstance(status, bool) or status not in REDIRECT_STATUSES:
        statuses = ", ".join(map(str, REDIRECT_STATUSES))
        raise r.fail(f"{at}.status", f"expected one of {statuses}, got {show(status)}")
    return Redirect(location=location, status=status)


def _respond(r: Reader, at: str, value: object) -> Respond:
    section = r.section(at, value, ("status", "body", "content_type"))
    d = Respond()
    status = r.integer(f"{at}.status", section.get("status", d.status), 200, 599)
    body = section.get("body", d.body)
    if not isinstance(body, str):
        raise r.fail(f"{at}.body", f"expected a string, got {show(body)}")
    if body and status in (204, 304):
        raise r.fail(f"{at}.body", f"a {status} response has no body (RFC 9110 15.3.5, 15.4.5)")
    content_type = _field_value(
        r, f"{at}.content_type", section.get("content_type", d.content_type)
    )
    if not content_type:
        raise r.fail(f"{at}.content_type", 'expected a media type like "text/html", got ""')
    return Respond(status=status, body=body, content_type=content_type)
