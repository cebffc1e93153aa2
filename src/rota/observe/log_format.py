"""Access log lines from outcomes (`rota.outcome.Outcome`): JSON and the nginx/Apache
combined format. Pure: a line is a function of the outcome and the wall-clock time.

JSON (one object a line, keys in this order):

    {"time": "2026-11-30T19:20:01.123Z", "client": "127.0.0.1:50312", "listener": "web",
     "method": "GET", "target": "/a?b=1", "protocol": "HTTP/1.1", "status": 200,
     "bytes_in": 0, "bytes_out": 612, "duration": 0.00123, "pool": "api", "server": "a1",
     "connect_time": 0.0, "response_time": 0.00101, "retries": 0, "end": "completed"}

`time` is when the exchange ended (RFC 3339, UTC, milliseconds). `status` is null when
rota sent none (the client left first; a TCP connection), `pool` null when no pool was
routed to, `server` null when no server was tried (rota answered itself). Seconds have
microsecond resolution.

Combined (nginx's `combined`, Apache's `%h %l %u %t "%r" %>s %b "%{Referer}i"
"%{User-agent}i"`):

    127.0.0.1 - - [30/Nov/2026:19:20:01 +0000] "GET /a?b=1 HTTP/1.1" 200 612 "-" "curl/7.88.1"

Quoted fields are escaped as nginx does: `"`, `\\` and bytes outside printable ASCII as
`\\xHH`, so a line is always one line. Where rota sent no status the line shows the one
nginx would log: 499 when the client left first, 408 on a timeout, 502 when the server
closed or every server refused, 200 for a TCP connection that ran.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring_ascii as _json_str
from typing import Final

from rota.outcome import CLIENT_CLOSED, COMPLETED, REFUSED, SERVER_CLOSED, TIMEOUT, Outcome

Formatter = Callable[[Outcome, float], str]

_MONTHS: Final = (
    *("Jan", "Feb", "Mar", "Apr", "May", "Jun"),
    *("Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
)
_STATUS_WHEN_NONE: Final = {
    COMPLETED: 200,
    CLIENT_CLOSED: 499,
    TIMEOUT: 408,
    SERVER_CLOSED: 502,
    REFUSED: 502,
}


class _TimeCache:
    """The whole second last formatted: lines come many a second."""

    __slots__ = ("full", "millis", "text", "unit")

    def __init__(self) -> None:
        self.unit = -1
        self.text = ""
        self.millis = -1  # rfc3339's whole answer, for this millisecond
        self.full = ""


_RFC3339: Final = _TimeCache()
_CLF: Final = _TimeCache()

# "000" to "999": the digits of a fraction, three at a time, never converted per line.
_DIGITS: Final = tuple(str(1000 + n)[1:] for n in range(1000))
# "0" to "999": statuses, retries, and most small bodies' byte counts.
_NUMBERS: Final = tuple(str(n) for n in range(1000))


def number(n: int) -> str:
    """`str(n)`, from a table below 1000 (a look-up instead of a conversion)."""
    return _NUMBERS[n] if 0 <= n < 1000 else str(n)


def rfc3339(now: float) -> str:
    """`2026-11-30T19:20:01.123Z`: UTC, milliseconds. Cached per millisecond: at the
    rates where the log's cost matters, many lines share one."""
    millis = int(now * 1000)
    if millis == _RFC3339.millis:
        return _RFC3339.full
    second = millis // 1000
    if second != _RFC3339.unit:
        _RFC3339.text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _RFC3339.unit = second
    # No format spec: compiled, a spec goes through str.format's parser on every call.
    _RFC3339.full = f"{_RFC3339.text}.{_DIGITS[millis % 1000]}Z"
    _RFC3339.millis = millis
    return _RFC3339.full


def seconds(value: float) -> str:
    """Seconds with microsecond resolution ("0.001230"), -1 for none. Under a second
    (nearly every line), two look-ups in a table of three digits: a float's formatting, or
    even an int's, costs several times more."""
    if value < 0:
        return "-1"
    if value == 0.0:
        return "0.000000"  # a pooled connection's connect_time
    micros = int(value * 1_000_000 + 0.5)
    if micros < 1_000_000:
        return f"0.{_DIGITS[micros // 1000]}{_DIGITS[micros % 1000]}"
    return f"{micros // 1_000_000}.{str(1_000_000 + micros % 1_000_000)[1:]}"


def clf_time(now: float) -> str:
    """`30/Nov/2026:19:20:01 +0000`: the common log format's time, in UTC."""
    second = int(now)
    if second != _CLF.unit:
        t = time.gmtime(second)
        _CLF.text = (
            f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
        )
        _CLF.unit = second
    return _CLF.text


# Quoted as JSON strings once each: servers' names (free text in the config) and clients'
# addresses (a keep-alive connection's lines share one). Bounded: past the bound the
# cache is emptied (servers removed at run time, connections long closed go with it).
_QUOTED: Final[dict[str, str]] = {}
_QUOTED_MAX: Final = 4096


def _quote(text: str) -> str:
    if len(_QUOTED) >= _QUOTED_MAX:
        _QUOTED.clear()
    quoted = _QUOTED[text] = _json_str(text)
    return quoted


def json_line(outcome: Outcome, now: float) -> str:
    """One JSON object and a newline.

    Only the client's address, the target and the server's name are escaped: listener
    and pool names are `[A-Za-z0-9_-]` (rota.config.listeners.NAME), a method is one
    llhttp knows by name (or empty), the protocol and the end are rota's own words, so
    none of them ever needs a JSON escape; not looking them up keeps the line cheap
    (docs/access-log.md, "Cost")."""
    pool = outcome.pool
    backend = outcome.backend
    status = outcome.status
    client = outcome.client
    pool_name = "null"
    if pool is not None:
        pool_name = f'"{pool.name}"'
    server = "null"
    if backend is not None:
        name = backend.name
        server = _QUOTED.get(name) or _quote(name)
    return (
        f'{{"time":"{rfc3339(now)}","client":{_QUOTED.get(client) or _quote(client)},'
        f'"listener":"{outcome.listener}","method":"{outcome.method}",'
        f'"target":{_json_str(outcome.target)},"protocol":"{outcome.protocol}",'
        f'"status":{number(status) if status else "null"},'
        f'"bytes_in":{number(outcome.bytes_in)},"bytes_out":{number(outcome.bytes_out)},'
        f'"duration":{seconds(max(0.0, outcome.finished - outcome.started))},'
        f'"pool":{pool_name},"server":{server},'
        f'"connect_time":{seconds(outcome.connect_time)},'
        f'"response_time":{seconds(outcome.response_time)},'
        f'"retries":{number(outcome.retries)},"end":"{outcome.reason}"}}\n'
    )


def escape(text: str) -> str:
    """A quoted field of the combined format, escaped as nginx escapes it: `"`, `\\` and
    every byte outside printable ASCII (of the UTF-8 form) as `\\xHH`."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return text
    out = []
    for byte in text.encode("utf-8", "surrogateescape"):
        if 0x20 <= byte < 0x7F and byte != 0x22 and byte != 0x5C:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02X}")
    return "".join(out)


def field(fields: Sequence[tuple[bytes, bytes]], name: bytes) -> str:
    """The first value of a request header field (`name` lower-case), or ""."""
    for key, value in fields:
        if len(key) == len(name) and key.lower() == name:
            return value.decode("utf-8", "surrogateescape")
    return ""


def combined_line(outcome: Outcome, now: float) -> str:
    """One line of the combined log format and a newline."""
    client = outcome.client
    host = client.rpartition(":")[0].strip("[]") or "-"
    if outcome.method:
        request = escape(f"{outcome.method} {outcome.target} {outcome.protocol}".rstrip())
    else:
        request = escape(outcome.target) or "-"
    status = outcome.status or _STATUS_WHEN_NONE.get(outcome.reason, 200)
    fields = outcome.fields
    referer = escape(field(fields, b"referer")) or "-"
    agent = escape(field(fields, b"user-agent")) or "-"
    return (
        f'{host} - - [{clf_time(now)}] "{request}" {status} {outcome.bytes_out} '
        f'"{referer}" "{agent}"\n'
    )


FORMATTERS: Final[dict[str, Formatter]] = {"json": json_line, "combined": combined_line}
