"""Typed reads out of a parsed file, each error naming the field (or the flag that set it)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from rota.config.errors import ConfigError


def show(value: object) -> str:
    """A value as the user wrote it (JSON spelling), or the name of its type."""
    if isinstance(value, str):
        return json.dumps(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return type(value).__name__


def field_path(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


class Reader:
    """Reads typed values out of the raw mapping, naming the field in every error.

    `flags` maps a dotted field (`timeouts.connect`) to the flag that set it: a bad value
    given on the command line is reported against the flag the user typed, not the file.
    `seed` keeps the seed loader's spelling of an unknown field (`server_list[0].wieght:
    unknown field`), which scripts and tests of the seed's era match on.
    """

    def __init__(self, source: str, flags: Mapping[str, str], *, seed: bool = False) -> None:
        self.source = source
        self.flags = flags
        self.seed = seed

    def fail(self, path: str, problem: str) -> ConfigError:
        flag = self.flags.get(path)
        if flag is not None:
            return ConfigError(flag, "", problem)
        return ConfigError(self.source, path, problem)

    def integer(
        self, path: str, value: object, lo: int, hi: int, *, digits_ok: bool = False
    ) -> int:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif digits_ok and isinstance(value, str) and value.isascii() and value.isdigit():
            number = int(value)
        if number is None or not lo <= number <= hi:
            raise self.fail(path, f"expected an integer {lo}-{hi}, got {show(value)}")
        return number

    def seconds(self, path: str, value: object, *, zero_ok: bool = False) -> float:
        """Seconds, at most a day; `zero_ok` admits 0 (a key for which 0 means "off")."""
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else -1
        if (number == 0 and zero_ok) or 0 < number <= 86400:
            return float(number)
        low = ">= 0" if zero_ok else "> 0"
        raise self.fail(path, f"expected a number of seconds {low} and <= 86400, got {show(value)}")

    def text(self, path: str, value: object) -> str:
        if isinstance(value, str) and value and value.isprintable():
            return value
        raise self.fail(path, f"expected a non-empty string, got {show(value)}")

    def boolean(self, path: str, value: object) -> bool:
        if isinstance(value, bool):
            return value
        raise self.fail(path, f"expected true or false, got {show(value)}")

    def choice(self, path: str, value: object, options: tuple[str, ...]) -> str:
        if isinstance(value, str) and value in options:
            return value
        raise self.fail(path, f"expected one of {', '.join(options)}, got {show(value)}")

    def items(self, path: str, value: object, what: str) -> list[Any]:
        if isinstance(value, list):
            return value
        raise self.fail(path, f"expected a list of {what}, got {show(value)}")

    def table(self, path: str, value: object) -> Mapping[str, Any]:
        if isinstance(value, Mapping):
            return value
        what = "an object" if self.seed else "a table (an object in JSON)"
        raise self.fail(path, f"expected {what}, got {show(value)}")

    def section(self, path: str, value: object, allowed: Iterable[str]) -> Mapping[str, Any]:
        """`value` as a table whose keys are all in `allowed`."""
        names = tuple(allowed)
        table = self.table(path, value)
        for key in table:
            if key not in names:
                raise self.unknown(path, str(key), names)
        return table

    def unknown(self, path: str, key: str, allowed: tuple[str, ...]) -> ConfigError:
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f'did you mean "{close[0]}"?' if close else f"expected one of: {', '.join(allowed)}"
        if self.seed:
            return self.fail(field_path(path, key), f"unknown field ({hint})")
        return self.fail(path, f"unknown field {show(key)} ({hint})")
