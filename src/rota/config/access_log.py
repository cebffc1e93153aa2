"""The `[access_log]` section (both shapes): where the access log goes and in which format.

    [access_log]
    path = "/var/log/rota/access.log"   # or "-" for stdout; absent: no access log
    format = "json"                      # or "combined" (the nginx/Apache line)

`--access-log PATH` and `--access-log-format FORMAT` set the same two keys.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from rota.config.model import ACCESS_LOG_FORMATS, AccessLogSpec
from rota.config.reader import Reader, show

KEYS = ("path", "format")
SECTION = "access_log"


def access_log(r: Reader, data: Mapping[str, Any]) -> AccessLogSpec:
    if SECTION not in data:
        return AccessLogSpec()
    section = r.section(SECTION, data[SECTION], KEYS)
    fmt = r.choice(f"{SECTION}.format", section.get("format", "json"), ACCESS_LOG_FORMATS)
    if "path" not in section:
        return AccessLogSpec(format=fmt)
    path = r.text(f"{SECTION}.path", section["path"])
    if path != "-":
        _check_path(r, path)
    return AccessLogSpec(path=path, format=fmt)


def _check_path(r: Reader, path: str) -> None:
    """Refuse what can never be opened for appending, without creating anything."""
    where = f"{SECTION}.path"
    if os.path.isdir(path):
        raise r.fail(where, f"{show(path)} is a directory, not a file")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise r.fail(where, f"{show(path)}: the directory {show(parent)} does not exist")
