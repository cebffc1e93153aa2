"""Running wrk and reading its results.

wrk's own summary is meant for people; a Lua `done()` hook prints one machine-readable line
instead, with exact counts and latency percentiles in microseconds.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# One line, key=value, so the parser does not depend on wrk's human output format.
DONE_LUA = """\
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d connect=%d read=%d write=%d status=%d" ..
    " timeout=%d p50_us=%d p99_us=%d\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50.0), latency:percentile(99.0)))
end
"""

RESULT_TAG = "BENCH_RESULT"
ERROR_KINDS = ("connect", "read", "write", "status", "timeout")

# wrk threads: one. wrk, the load balancer and the backends share the machine's cores, and
# one wrk thread (C, epoll) outruns every contender here but the direct ceiling.
WRK_THREADS = 1

# A request slower than this counts as a wrk timeout error.
WRK_TIMEOUT_S = 2


@dataclass(frozen=True)
class Workload:
    key: str
    label: str
    connections: int
    close: bool  # one request per connection (Connection: close)


WORKLOADS = (
    Workload("ka1", "keep-alive, 1 conn", 1, False),
    Workload("ka50", "keep-alive, 50 conns", 50, False),
    Workload("ka400", "keep-alive, 400 conns", 400, False),
    Workload("close50", "close per request, 50 conns", 50, True),
)


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    errors: dict[str, int]
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_total(self) -> int:
        return sum(self.errors.values())


class WrkError(RuntimeError):
    """wrk failed or printed no result line."""


def parse_wrk_output(text: str) -> WrkResult:
    """Read the BENCH_RESULT line that DONE_LUA prints; raise WrkError if there is none."""
    for line in text.splitlines():
        if not line.startswith(RESULT_TAG + " "):
            continue
        fields: dict[str, int] = {}
        for item in line.split()[1:]:
            key, _, value = item.partition("=")
            try:
                fields[key] = int(float(value))
            except ValueError as exc:
                raise WrkError(f"bad wrk result field {item!r}") from exc
        try:
            return WrkResult(
                requests=fields["requests"],
                duration_s=fields["duration_us"] / 1e6,
                errors={k: fields[k] for k in ERROR_KINDS},
                p50_ms=fields["p50_us"] / 1e3,
                p99_ms=fields["p99_us"] / 1e3,
            )
        except KeyError as exc:
            raise WrkError(f"wrk result line lacks {exc}: {line!r}") from exc
    raise WrkError(f"no {RESULT_TAG} line in wrk output:\n{text[-2000:]}")


def wrk_argv(
    workload: Workload, duration_s: float, url: str, script: Path, wrk: str = "wrk"
) -> list[str]:
    argv = [
        wrk,
        "-t",
        str(min(WRK_THREADS, workload.connections)),
        "-c",
        str(workload.connections),
        "-d",
        f"{max(1, round(duration_s))}s",  # wrk takes whole seconds
        "--timeout",
        f"{WRK_TIMEOUT_S}s",
        "-s",
        str(script),
    ]
    if workload.close:
        # wrk then opens a new connection for every request.
        argv += ["-H", "Connection: close"]
    return [*argv, url]


def run_wrk(argv: Sequence[str], duration_s: float) -> WrkResult:
    """Run wrk, bounded at its duration plus a margin, and parse its result."""
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=duration_s + WRK_TIMEOUT_S + 20,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise WrkError(f"wrk did not finish: {' '.join(argv)}") from exc
    if done.returncode != 0:
        out = " ".join((done.stdout + done.stderr).split())[-300:]
        raise WrkError(f"wrk exited with {done.returncode}: {out}")
    return parse_wrk_output(done.stdout)
