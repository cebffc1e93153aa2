"""The line of a TOML file where a field is written, for error messages. Pure.

tomllib gives no positions, so this reads the text again: it follows the table headers
(`[load]`, `[[servers]]`, counting each array-of-tables entry) and finds the first line
that assigns the field's key in the right table, directly or in an inline table on that
line (`service = { dist = "x" }`); a key that is missing gets the line of the table it belongs
in. Best effort: a field it cannot place gets no line, and the error still names it.
"""

from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
_PART = re.compile(r"([A-Za-z0-9_\-]+)(?:\[(\d+)\])?")


def _steps(path: str) -> list[tuple[str, int | None]]:
    """`servers[2].service.dist` -> [("servers", 2), ("service", None), ("dist", None)]."""
    steps: list[tuple[str, int | None]] = []
    for part in path.split("."):
        m = _PART.fullmatch(part)
        if m is None:
            return []
        steps.append((m.group(1), int(m.group(2)) if m.group(2) is not None else None))
    return steps


def line_of(text: str, path: str) -> int | None:
    """The 1-based line where `path` (dotted, `[i]` for array entries) is set, if found."""
    steps = _steps(path)
    if not steps:
        return None
    lines = text.splitlines()
    table: list[tuple[str, int | None]] = []  # the current header, as steps
    counts: dict[str, int] = {}  # array-of-tables entries seen, by header name
    enclosing: int | None = None  # a missing key: the line of the table it belongs in
    for number, line in enumerate(lines, 1):
        header = _HEADER.match(line)
        if header is not None:
            name = header.group(2).replace('"', "").replace("'", "").replace(" ", "")
            if header.group(1) == "[[":
                index = counts.get(name, -1) + 1
                counts[name] = index
                table = [(p, None) for p in name.split(".")]
                table[-1] = (table[-1][0], index)
            else:
                table = [(p, None) for p in name.split(".")]
            if table == steps:
                return number
            if steps[: len(table)] == table:
                enclosing = number
            continue
        if steps[: len(table)] != table or len(steps) == len(table):
            continue
        rest = steps[len(table) :]
        key = rest[0][0]
        if re.match(rf"^\s*{re.escape(key)}\s*=", line) is None:
            continue
        # The key is on this line; a deeper field is on it too (an inline table) or is
        # not written at all (a missing key of an inline table): this line either way.
        return number
    return enclosing
