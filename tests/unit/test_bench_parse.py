"""The benchmark's pure parts: reading wrk and /proc output, medians, target checks."""

from __future__ import annotations

import pytest
from bench.held import BadResponse, content_length
from bench.procstat import parse_cpu_busy_ticks, parse_stat, parse_status_kib
from bench.stats import RunRecord, Summary, median, ratio, summarise
from bench.targets import FAIL, NOT_RUN, PASS, REFERENCE, check_targets
from bench.wrkrun import WrkError, parse_wrk_output

WRK_OUT = """Running 2s test @ http://127.0.0.1:8080/
  1 threads and 50 connections
BENCH_RESULT requests=120000 duration_us=2000000 connect=0 read=3 write=0 status=2 timeout=1 \
p50_us=850 p99_us=4200
"""


def test_parse_wrk_result_line() -> None:
    r = parse_wrk_output(WRK_OUT)
    assert r.requests == 120_000
    assert r.rps == pytest.approx(60_000)
    assert r.p50_ms == pytest.approx(0.85)
    assert r.p99_ms == pytest.approx(4.2)
    assert r.errors == {"connect": 0, "read": 3, "write": 0, "status": 2, "timeout": 1}
    assert r.error_total == 6


def test_parse_wrk_without_result_line_raises() -> None:
    with pytest.raises(WrkError):
        parse_wrk_output("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_parse_wrk_missing_field_raises() -> None:
    with pytest.raises(WrkError):
        parse_wrk_output("BENCH_RESULT requests=1 duration_us=1\n")


def test_parse_stat_counts_fields_after_the_last_paren() -> None:
    # A command name with spaces and ')' must not shift the fields.
    rest = ["S", "42"] + ["0"] * 9 + ["150", "50"] + ["0"] * 30
    text = "1234 (we ird) name) " + " ".join(rest)
    assert parse_stat(text) == (42, 200)


def test_parse_status_kib() -> None:
    text = "Name:\trota\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n"
    assert parse_status_kib(text, "VmHWM") == 20480
    assert parse_status_kib(text, "VmRSS") == 10240
    assert parse_status_kib(text, "VmSwap") == 0


def test_median_skips_missing_values() -> None:
    assert median([3.0, None, 1.0, 2.0]) == 2.0
    assert median([None, None]) is None


def test_ratio() -> None:
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(None, 2.0) is None
    assert ratio(1.0, 0.0) is None


def test_summarise_takes_medians_and_sums_errors() -> None:
    recs = [
        RunRecord("a", "ka50", 0, rps=10.0, p99_ms=1.0, errors={"read": 1}, cpu_us_per_req=5.0),
        RunRecord("a", "ka50", 1, rps=30.0, p99_ms=3.0, errors={"read": 2}, cpu_us_per_req=7.0),
        RunRecord("a", "ka50", 2, rps=20.0, p99_ms=2.0, cpu_us_per_req=6.0),
        RunRecord("a", "ka50", 3, failure="crashed"),
    ]
    (s,) = summarise(recs)
    assert (s.rps, s.p99_ms, s.cpu_us_per_req) == (20.0, 2.0, 6.0)
    assert s.errors["read"] == 3
    assert s.error_total == 3
    assert (s.rounds, s.failed_rounds, s.failure) == (4, 1, "crashed")


def _s(key: str, workload: str, rps: float, p99: float, cpu: float, errors: int = 0) -> Summary:
    return Summary(key, workload, 3, 0, rps, 1.0, p99, cpu, 10.0, {"timeout": errors})


def test_targets_pass_fail_and_not_run() -> None:
    table = {
        ("haproxy", "ka50"): _s("haproxy", "ka50", 40_000, 2.0, 20.0),
        ("nginx", "ka50"): _s("nginx", "ka50", 50_000, 2.0, 15.0),
        ("rota-1w", "ka50"): _s("rota-1w", "ka50", 60_000, 3.0, 60.0),
        ("haproxy", "ka400"): _s("haproxy", "ka400", 30_000, 10.0, 30.0),
        ("rota-1w", "ka400"): _s("rota-1w", "ka400", 30_000, 20.0, 30.0, errors=4),
    }
    lines = {t.target: t.status for t in check_targets(table, ("rota-1w",), 12.0, "")}
    assert lines["keep-alive 50: rota 1 worker CPU/request <= 2.5x HAProxy"] == FAIL
    assert lines["keep-alive 50: rota-1w req/s >= nginx"] == PASS
    assert lines["keep-alive 50: rota-1w p99 <= 2x HAProxy"] == PASS
    # p99 is within 3x, but the timeouts fail it.
    assert lines["keep-alive 400: rota-1w no errors/timeouts and p99 <= 3x HAProxy"] == FAIL
    assert lines["close per request, 50 conns: rota-1w req/s >= 0.7x HAProxy"] == NOT_RUN
    assert lines["idle keep-alive connections: rota RSS <= 16 KiB each"] == PASS
    # The Python floor is a reference, listed only when it ran.
    assert not any("floor" in target for target in lines)


def test_python_floor_is_reported_as_a_reference() -> None:
    table = {
        ("nginx", "ka50"): _s("nginx", "ka50", 50_000, 2.0, 15.0),
        ("floor", "ka50"): _s("floor", "ka50", 45_000, 2.0, 16.0),
    }
    (floor,) = [t for t in check_targets(table, (), None, "") if "floor" in t.target]
    assert floor.status == REFERENCE
    assert "x0.90" in floor.detail


def test_content_length_of_a_response_head() -> None:
    head = b"HTTP/1.1 200 OK\r\nServer: x\r\ncontent-length: 3\r\n\r\n"
    assert content_length(head) == 3
    with pytest.raises(BadResponse):
        content_length(b"HTTP/1.1 200 OK\r\n\r\n")


def test_cpu_busy_ticks_leave_out_idle_iowait_and_softirq() -> None:
    text = "cpu  100 2 30 5000 7 1 40 3 0 0\ncpu0 50 1 15 2500 3 0 20 1 0 0\n"
    assert parse_cpu_busy_ticks(text) == 100 + 2 + 30 + 1 + 3


def test_slow_bench_reads_its_wrk_script_output() -> None:
    from bench.slow import parse

    run = parse(
        "Running 3s test\nserved s1 600\nserved s2 300\nserved s3 100\n"
        "p50 550\np99 49110\nrequests 1000\nerrors 2\nmicroseconds 2000000\n"
    )
    assert run.rps == 500.0 and run.errors == 2
    assert (run.p50_ms, run.p99_ms) == (0.55, 49.11)
    assert [run.share(s) for s in ("s1", "s2", "s3")] == [0.6, 0.3, 0.1]
