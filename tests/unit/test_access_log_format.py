"""Access log lines (rota.observe.log_format): whatever a client sends as its target, user
agent or referer, a line is exactly one line, JSON that parses to the documented keys, or a
combined line that the usual nginx combined-format parsers read."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rota.config.errors import ConfigError
from rota.config.load import build_config
from rota.config.model import BackendSpec, HealthSpec
from rota.observe.log_format import (
    clf_time,
    combined_line,
    json_line,
    number,
    rfc3339,
    seconds,
)
from rota.outcome import REASONS, End, Outcome
from rota.pool import Pool

# The regex log parsers use for nginx's `combined` format.
COMBINED = re.compile(
    r"^(?P<addr>\S+) - (?P<user>\S+) \[(?P<time>\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "
    r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+) '
    r'"(?P<referer>[^"]*)" "(?P<agent>[^"]*)"$'
)
KEYS = [
    "time",
    "client",
    "listener",
    "method",
    "target",
    "protocol",
    "status",
    "bytes_in",
    "bytes_out",
    "duration",
    "pool",
    "server",
    "connect_time",
    "response_time",
    "retries",
    "end",
]
NOW = 1764530401.25  # 2025-11-30T19:20:01.250Z


def pool() -> Pool:
    return Pool((BackendSpec("a1", "127.0.0.1", 7001),), "api", HealthSpec())


def outcome(
    target: str = "/x", agent: bytes = b"curl/8", referer: bytes | None = None, status: int = 200
) -> Outcome:
    o = Outcome("web", 100.0)
    p = pool()
    o.pool, o.backend = p, p.backends[0]
    o.finished = 100.0015
    o.status = status
    o.client = "127.0.0.1:50312"
    o.method, o.target, o.protocol = "GET", target, "HTTP/1.1"
    o.bytes_in, o.bytes_out = 0, 612
    o.connect_time, o.response_time, o.retries = 0.0, 0.00125, 0
    o.reason = "completed"
    o.end = End.COMPLETE
    fields = [(b"Host", b"t"), (b"User-Agent", agent)]
    if referer is not None:
        fields.append((b"Referer", referer))
    o.fields = fields
    return o


def test_a_json_line_has_the_documented_keys_in_order() -> None:
    line = json_line(outcome(), NOW)
    assert line.endswith("}\n") and line.count("\n") == 1
    entry = json.loads(line)
    assert list(entry) == KEYS
    assert entry == {
        "time": "2025-11-30T19:20:01.250Z",
        "client": "127.0.0.1:50312",
        "listener": "web",
        "method": "GET",
        "target": "/x",
        "protocol": "HTTP/1.1",
        "status": 200,
        "bytes_in": 0,
        "bytes_out": 612,
        "duration": 0.0015,
        "pool": "api",
        "server": "a1",
        "connect_time": 0.0,
        "response_time": 0.00125,
        "retries": 0,
        "end": "completed",
    }


def test_json_says_null_for_what_did_not_happen() -> None:
    o = Outcome("web", 1.0)
    o.finished = 1.0
    o.reason = "client_closed"
    entry = json.loads(json_line(o, NOW))
    assert entry["status"] is None and entry["pool"] is None and entry["server"] is None
    assert entry["connect_time"] == -1 and entry["response_time"] == -1
    assert entry["duration"] == 0.0 and entry["end"] == "client_closed"


def test_a_combined_line_reads_as_nginx_writes_it() -> None:
    line = combined_line(outcome(referer=b"https://example.com/"), NOW)
    assert line == (
        '127.0.0.1 - - [30/Nov/2025:19:20:01 +0000] "GET /x HTTP/1.1" 200 612 '
        '"https://example.com/" "curl/8"\n'
    )


def test_combined_shows_nginx_statuses_where_rota_sent_none() -> None:
    o = outcome(status=0)
    o.reason = "client_closed"
    assert '" 499 ' in combined_line(o, NOW)
    o.reason = "timeout"
    assert '" 408 ' in combined_line(o, NOW)
    tcp = Outcome("raw", 1.0)
    tcp.client, tcp.reason = "[::1]:4000", "completed"
    line = combined_line(tcp, NOW)
    assert COMBINED.match(line.rstrip("\n"))
    assert line.startswith("::1 - - [") and '"-" 200 0 "-" "-"' in line


def test_times() -> None:
    assert rfc3339(0.0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(NOW + 0.7489) == "2025-11-30T19:20:01.998Z"
    assert rfc3339(NOW + 0.7489) == "2025-11-30T19:20:01.998Z"  # the millisecond's cache
    assert rfc3339(NOW + 0.7501) == "2025-11-30T19:20:02.000Z"
    assert clf_time(NOW) == "30/Nov/2025:19:20:01 +0000"


def test_seconds_are_microseconds_in_decimal() -> None:
    assert [seconds(v) for v in (-1.0, 0.0, 0.000_000_4, 0.000_001, 0.000_412, 0.5)] == [
        "-1",
        "0.000000",
        "0.000000",
        "0.000001",
        "0.000412",
        "0.500000",
    ]
    assert [seconds(v) for v in (0.999_999_6, 1.0, 12.345_678_9)] == [
        "1.000000",
        "1.000000",
        "12.345679",
    ]


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_numbers_read_back(n: int) -> None:
    assert number(n) == str(n)


@given(st.floats(min_value=0.0, max_value=100_000.0))
def test_seconds_read_back_within_half_a_microsecond(value: float) -> None:
    text = seconds(value)
    whole, _, fraction = text.partition(".")
    assert whole.isdigit() and len(fraction) == 6 and fraction.isdigit()
    assert abs(float(text) - value) <= 0.000_000_5 + value * 1e-15


@settings(deadline=None)
@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=80))
def test_any_server_name_or_client_gives_json(name: str, client: str) -> None:
    """Server names are free text in the config, and a client is whatever the PROXY
    header said: both are escaped."""
    o = outcome()
    o.backend = Pool((BackendSpec(name, "127.0.0.1", 7001),), "api", HealthSpec()).backends[0]
    o.client = client
    entry = json.loads(json_line(o, NOW))
    assert entry["server"] == name and entry["client"] == client


def test_names_written_unescaped_cannot_need_escaping() -> None:
    """json_line writes listener and pool names as they are: the config refuses any name
    that would need a JSON escape."""
    for bad in ('we"b', "we\\b", "w\u00e9b", "we b"):
        site = {
            "listeners": {bad: {"bind": "127.0.0.1:8080", "routes": [{"pool": "p"}]}},
            "pools": {"p": {"servers": [{"host": "127.0.0.1", "port": 7001}]}},
        }
        with pytest.raises(ConfigError):
            build_config(site, "site.toml", {})
        site = {
            "listeners": {"web": {"bind": "127.0.0.1:8080", "routes": [{"pool": bad}]}},
            "pools": {bad: {"servers": [{"host": "127.0.0.1", "port": 7001}]}},
        }
        with pytest.raises(ConfigError):
            build_config(site, "site.toml", {})


# What a client controls: the target (as decoded from its bytes), the user agent, the
# referer (raw bytes of header values, any byte llhttp lets through).
targets = st.text(min_size=1, max_size=200)
values = st.binary(max_size=200)


@settings(deadline=None)  # a shared machine: time is not what is tested
@given(targets, values, values)
def test_any_target_or_agent_gives_one_json_line(target: str, agent: bytes, ref: bytes) -> None:
    line = json_line(outcome(target, agent, ref), NOW)
    assert line.endswith("\n") and "\n" not in line[:-1] and "\r" not in line
    entry = json.loads(line)
    assert list(entry) == KEYS and entry["target"] == target


@settings(deadline=None)  # a shared machine: time is not what is tested
@given(targets, values, values)
def test_any_target_or_agent_gives_one_combined_line(target: str, agent: bytes, ref: bytes) -> None:
    line = combined_line(outcome(target, agent, ref), NOW)
    assert line.endswith("\n") and "\n" not in line[:-1] and "\r" not in line
    match = COMBINED.match(line[:-1])
    assert match is not None, line
    assert match["status"] == "200" and match["bytes"] == "612"
    assert line.isascii() and line[:-1].isprintable()
    # Printable ASCII other than the quote and the backslash shows as it was sent.
    if not agent:
        assert match["agent"] == "-"
    elif all(0x20 <= b < 0x7F and b not in b'"\\' for b in agent):
        assert match["agent"] == agent.decode()


@settings(deadline=None)  # a shared machine: time is not what is tested
@given(st.sampled_from(REASONS), st.one_of(st.just(0), st.integers(100, 599)))
def test_every_end_and_status_gives_a_combined_status(reason: str, status: int) -> None:
    o = outcome(status=status)
    o.reason = reason
    match = COMBINED.match(combined_line(o, NOW)[:-1])
    assert match is not None
    none = {"completed": 200, "client_closed": 499, "timeout": 408}.get(reason, 502)
    assert int(match["status"]) == (status or none)
