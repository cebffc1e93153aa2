"""A pool's balancing keys (docs/configuration.md, docs/policies.md):

    [pools.api]
    algorithm = "hash"                    # a built-in, or "package.module:ClassName"
    key = "header:x-user"                 # hash only, required there
    hash_balance_factor = 1.25            # hash only; 0 or absent: unbounded
    slow_start = 30                       # seconds; 0: at once
    sticky = { cookie = "rota_srv" }
    queue_timeout = 5                     # seconds a request waits for a server below max_requests
    options = { zones = { a = "eu" } }    # a custom algorithm only: passed to its class

Rules across keys are checked here, each error naming the key at fault. A custom class is
imported and built with its options at load time, so `rota check-config` reports a class
that cannot be imported, lacks `pick` or refuses its options.
"""

from __future__ import annotations

import datetime
import difflib
from collections.abc import Mapping
from typing import Any

from rota.config.model import ALGORITHM_ALIASES, ALGORITHMS
from rota.config.reader import Reader, field_path, show
from rota.config.routes import is_token

POOL_BALANCING_KEYS = (
    "algorithm",
    "key",
    "hash_balance_factor",
    "slow_start",
    "sticky",
    "queue_timeout",
    "options",
)
HASH_KEYS = ("client_ip", "path")  # and "header:NAME", "cookie:NAME", "query:NAME"
HASH_KEY_FORMS = '"client_ip", "header:NAME", "cookie:NAME", "path" or "query:NAME"'
MAX_BALANCE_FACTOR = 100.0
CUSTOM_FORM = '"package.module:ClassName"'
# What TOML can hold (and rota check-config print back): no null, unlike JSON.
OPTION_SCALARS = (
    str,
    int,
    float,
    bool,
    datetime.datetime,
    datetime.date,
    datetime.time,
)


def is_custom(algorithm: str) -> bool:
    return ":" in algorithm


def algorithm(r: Reader, path: str, value: object, options: Mapping[str, Any]) -> str:
    """A built-in's name (aliases resolved), or a custom class path, imported and built
    with `options` to check it. `options` errors are reported against `path`'s sibling."""
    if isinstance(value, str) and value in ALGORITHMS:
        return ALGORITHM_ALIASES.get(value, value)
    if not isinstance(value, str) or not is_custom(value):
        builtin = ", ".join(ALGORITHMS)
        close = difflib.get_close_matches(value, ALGORITHMS, n=1) if isinstance(value, str) else []
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        raise r.fail(
            path,
            f"unknown algorithm {show(value)}{hint}: expected one of {builtin}, "
            f"or a class of your own, {CUSTOM_FORM}",
        )
    # Imported here, not at the top: rota.balancing imports this package's model.
    from rota.balancing.custom import PolicyLoadError, instantiate, load_class

    try:
        cls = load_class(value)
    except PolicyLoadError as exc:
        raise r.fail(path, str(exc)) from None
    try:
        instantiate(cls, options)
    except PolicyLoadError as exc:
        where = field_path(path.rpartition(".")[0], "options") if options else path
        raise r.fail(where, str(exc)) from None
    return value


def pool_keys(r: Reader, path: str, section: Mapping[str, Any]) -> dict[str, Any]:
    """The PoolSpec fields of a pool's balancing keys (`section` is the pool's table)."""
    at = {k: field_path(path, k) for k in POOL_BALANCING_KEYS}
    options = _options(r, at["options"], section.get("options", {}))
    name = algorithm(r, at["algorithm"], section.get("algorithm", "round_robin"), options)
    custom = is_custom(name)
    if "options" in section and not custom:
        raise r.fail(
            at["options"], f"only with an algorithm of your own ({CUSTOM_FORM}); {_is(name)}"
        )
    for only_hash in ("key", "hash_balance_factor"):
        if only_hash in section and name != "hash":
            raise r.fail(at[only_hash], f'only with algorithm "hash"; {_is(name)}')
    hash_key = ""
    factor = 0.0
    if name == "hash":
        if "key" not in section:
            raise r.fail(at["key"], f'missing: algorithm "hash" needs a key: {HASH_KEY_FORMS}')
        hash_key = _hash_key(r, at["key"], section["key"])
        factor = _balance_factor(r, at["hash_balance_factor"], section.get("hash_balance_factor"))
    return {
        "algorithm": name,
        "hash_key": hash_key,
        "hash_balance_factor": factor,
        "slow_start": r.seconds(at["slow_start"], section.get("slow_start", 0), zero_ok=True),
        "sticky_cookie": _sticky(r, at["sticky"], section.get("sticky")),
        "queue_timeout": r.seconds(
            at["queue_timeout"], section.get("queue_timeout", 0), zero_ok=True
        ),
        "options": options,
    }


def seed_algorithm(r: Reader, value: object) -> str:
    """The seed's `algorithm`: any that needs no other key (the seed shape has none)."""
    name = algorithm(r, "algorithm", value, {})
    if name == "hash":
        raise r.fail(
            "algorithm", '"hash" needs a key, which only a pool of the listeners shape sets'
        )
    return name


def _is(name: str) -> str:
    return f"algorithm is {show(name)}"


def _hash_key(r: Reader, path: str, value: object) -> str:
    expected = f"expected {HASH_KEY_FORMS}, got {show(value)}"
    if not isinstance(value, str):
        raise r.fail(path, expected)
    if value in HASH_KEYS:
        return value
    kind, colon, name = value.partition(":")
    if not colon or kind not in ("header", "cookie", "query"):
        raise r.fail(path, expected)
    if kind == "query":
        # A parameter name as it appears in the target, before its "=".
        if not name or not all(0x21 <= ord(c) <= 0x7E and c not in "&=#?" for c in name):
            raise r.fail(path, f"expected a query parameter name after query:, got {show(value)}")
        return value
    if not is_token(name):
        raise r.fail(path, f"expected a {kind} name (a token) after {kind}:, got {show(value)}")
    # Field names are case-insensitive (RFC 9110 5.1); cookie names are not (RFC 6265 4.1.1).
    return f"header:{name.lower()}" if kind == "header" else value


def _balance_factor(r: Reader, path: str, value: object) -> float:
    if value is None:
        return 0.0
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else -1
    if number == 0 or 1 < number <= MAX_BALANCE_FACTOR:
        return float(number)
    raise r.fail(
        path,
        f"expected a number > 1 and <= {MAX_BALANCE_FACTOR:g} (a server's load at most this "
        f"times the average), or 0 for unbounded, got {show(value)}",
    )


def _sticky(r: Reader, path: str, value: object) -> str | None:
    if value is None:
        return None
    section = r.section(path, value, ("cookie",))
    if "cookie" not in section:
        raise r.fail(field_path(path, "cookie"), "missing: the name of the cookie to set")
    cookie = section["cookie"]
    if not isinstance(cookie, str) or not is_token(cookie):
        raise r.fail(
            field_path(path, "cookie"),
            f"expected a cookie name (a token, RFC 6265), got {show(cookie)}",
        )
    return cookie


def _options(r: Reader, path: str, value: object) -> dict[str, Any]:
    table = r.table(path, value)
    return {str(k): _option(r, field_path(path, str(k)), v) for k, v in table.items()}


def _option(r: Reader, path: str, value: object) -> Any:
    if isinstance(value, Mapping):
        return _options(r, path, value)
    if isinstance(value, list):
        return [_option(r, f"{path}[{i}]", v) for i, v in enumerate(value)]
    if isinstance(value, OPTION_SCALARS):
        return value
    raise r.fail(path, f"expected a string, number, boolean, list or table, got {show(value)}")
