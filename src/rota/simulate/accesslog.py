"""Reading a recorded JSON access log of rota's for a replay. Pure apart from reading the file.

One JSON object per line, as rota's access log writes them. A replay needs two things of
each line: when the request arrived (`time`, RFC 3339) and how long the server took
(`response_time` in seconds, falling back to `duration`, the whole exchange, when a line
has none). Other keys (`server`, `status`, `target`, ...) are ignored. A line that is not
JSON, or lacks these keys, is refused naming the file and line: a replay that silently
skipped lines would answer a question about other traffic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


class LogError(Exception):
    """The log cannot be used; `line` is its 1-based line (0 for the file as a whole)."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Recorded:
    """The requests of a log: arrival offsets from the first (sorted), and service times."""

    arrivals: tuple[float, ...]
    services: tuple[float, ...]


def _seconds(record: dict[str, object], key: str) -> float | None:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{key}: expected a number of seconds >= 0, got {value!r}")
    return float(value)


def read_log(path: Path) -> Recorded:
    """The requests `path` records, sorted by arrival. Raises LogError naming the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LogError(0, f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    rows: list[tuple[float, float]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LogError(number, f"not a JSON object: {exc.msg}") from None
        if not isinstance(record, dict):
            raise LogError(number, "not a JSON object")
        stamp = record.get("time")
        if not isinstance(stamp, str):
            raise LogError(number, 'no "time" (RFC 3339, when the request arrived)')
        try:
            when = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise LogError(number, f'"time": not an RFC 3339 time: {stamp!r}') from None
        try:
            service = _seconds(record, "response_time")
            if service is None:
                service = _seconds(record, "duration")
        except ValueError as exc:
            raise LogError(number, str(exc)) from None
        if service is None:
            raise LogError(number, 'no "response_time" nor "duration" (seconds)')
        rows.append((when, service))
    if not rows:
        raise LogError(0, f"{path} holds no requests")
    rows.sort(key=lambda row: row[0])
    first = rows[0][0]
    return Recorded(tuple(r[0] - first for r in rows), tuple(r[1] for r in rows))
