"""The performance targets of issue 5, checked against the medians (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bench.stats import Summary

PASS, FAIL, NOT_RUN = "PASS", "FAIL", "NOT RUN"
# Not a target: a reference measured beside them (the Python floor, bench/floor.py).
REFERENCE = "REFERENCE"

IDLE_CONN_BUDGET_KIB = 16.0


@dataclass(frozen=True)
class TargetLine:
    status: str
    target: str
    detail: str


Table = Mapping[tuple[str, str], Summary]


def _get(table: Table, contender: str, workload: str) -> Summary | None:
    s = table.get((contender, workload))
    return s if s is not None and s.rps is not None else None


def _compare(
    table: Table,
    target: str,
    rota: str,
    ref: str,
    workload: str,
    metric: Callable[[Summary], float | None],
    unit: str,
    check: Callable[[float, float], bool],
) -> TargetLine:
    mine, theirs = _get(table, rota, workload), _get(table, ref, workload)
    if mine is None or theirs is None:
        missing = rota if mine is None else ref
        return TargetLine(NOT_RUN, target, f"no result for {missing} at {workload}")
    a, b = metric(mine), metric(theirs)
    if a is None or b is None:
        return TargetLine(NOT_RUN, target, "metric not measured")
    ok = check(a, b)
    detail = f"{rota} {a:,.1f} {unit} vs {ref} {b:,.1f} {unit} (x{a / b:.2f})" if b else ""
    return TargetLine(PASS if ok else FAIL, target, detail)


def _cpu(s: Summary) -> float | None:
    return s.cpu_us_per_req


def _rps(s: Summary) -> float | None:
    return s.rps


def _p99(s: Summary) -> float | None:
    return s.p99_ms


def check_targets(
    table: Table, rota_keys: tuple[str, ...], idle_rss_kib: float | None, idle_note: str
) -> list[TargetLine]:
    """`rota_keys`: the HTTP-mode rota contenders that ran (1 worker, then workers auto)."""
    lines = [
        _compare(
            table,
            "keep-alive 50: rota 1 worker CPU/request <= 2.5x HAProxy",
            "rota-1w",
            "haproxy",
            "ka50",
            _cpu,
            "us/req",
            lambda a, b: a <= 2.5 * b,
        )
    ]
    for key in rota_keys:
        lines.append(
            _compare(
                table,
                f"keep-alive 50: {key} req/s >= nginx",
                key,
                "nginx",
                "ka50",
                _rps,
                "req/s",
                lambda a, b: a >= b,
            )
        )
    floor = _compare(
        table,
        "keep-alive 50: the Python floor's req/s beside nginx's (bench/floor.py)",
        "floor",
        "nginx",
        "ka50",
        _rps,
        "req/s",
        lambda a, b: True,
    )
    if floor.status != NOT_RUN:
        lines.append(TargetLine(REFERENCE, floor.target, floor.detail))
    for key in rota_keys:
        lines.append(
            _compare(
                table,
                f"keep-alive 50: {key} p99 <= 2x HAProxy",
                key,
                "haproxy",
                "ka50",
                _p99,
                "ms",
                lambda a, b: a <= 2 * b,
            )
        )
    for key in rota_keys:
        line = _compare(
            table,
            f"keep-alive 400: {key} no errors/timeouts and p99 <= 3x HAProxy",
            key,
            "haproxy",
            "ka400",
            _p99,
            "ms",
            lambda a, b: a <= 3 * b,
        )
        mine = table.get((key, "ka400"))
        if line.status != NOT_RUN and mine is not None and mine.error_total:
            errs = ", ".join(f"{k} {v}" for k, v in mine.errors.items() if v)
            line = TargetLine(FAIL, line.target, f"{line.detail}; errors: {errs}")
        lines.append(line)
    for key in rota_keys:
        lines.append(
            _compare(
                table,
                f"close per request, 50 conns: {key} req/s >= 0.7x HAProxy",
                key,
                "haproxy",
                "close50",
                _rps,
                "req/s",
                lambda a, b: a >= 0.7 * b,
            )
        )
    lines.append(
        _compare(
            table,
            "keep-alive 50, TCP mode: rota CPU/request <= 1.5x HAProxy mode tcp",
            "rota-tcp",
            "haproxy-tcp",
            "ka50",
            _cpu,
            "us/req",
            lambda a, b: a <= 1.5 * b,
        )
    )
    target = f"idle keep-alive connections: rota RSS <= {IDLE_CONN_BUDGET_KIB:g} KiB each"
    if idle_rss_kib is None:
        lines.append(TargetLine(NOT_RUN, target, idle_note))
    else:
        ok = idle_rss_kib <= IDLE_CONN_BUDGET_KIB
        detail = f"{idle_rss_kib:.1f} KiB per connection" + (f"; {idle_note}" if idle_note else "")
        lines.append(TargetLine(PASS if ok else FAIL, target, detail))
    return lines
