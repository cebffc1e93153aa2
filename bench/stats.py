"""Per-run records and their medians over rounds (pure: no I/O)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bench.wrkrun import ERROR_KINDS


@dataclass(frozen=True)
class RunRecord:
    """One wrk run against one contender. `failure` is set when the run produced no result."""

    contender: str
    workload: str
    round: int
    rps: float = 0.0
    requests: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    cpu_us_per_req: float | None = None  # None: no load-balancer process (direct)
    peak_rss_mb: float | None = None
    # CPU (in cores) the rest of the machine used during the run: not the load balancer,
    # wrk or the backends. High values mean another job shared the machine.
    other_cores: float | None = None
    failure: str = ""


@dataclass(frozen=True)
class Summary:
    """Medians over the successful rounds; errors are summed over all rounds."""

    contender: str
    workload: str
    rounds: int
    failed_rounds: int
    rps: float | None
    p50_ms: float | None
    p99_ms: float | None
    cpu_us_per_req: float | None
    peak_rss_mb: float | None
    errors: dict[str, int]
    other_cores: float | None = None
    failure: str = ""

    @property
    def error_total(self) -> int:
        return sum(self.errors.values())


def median(values: Iterable[float | None]) -> float | None:
    """Median of the values that are not None; None when there are none."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(records: Sequence[RunRecord]) -> list[Summary]:
    """One Summary per (contender, workload), in order of first appearance."""
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for rec in records:
        groups.setdefault((rec.contender, rec.workload), []).append(rec)
    out = []
    for (contender, workload), recs in groups.items():
        ok = [r for r in recs if not r.failure]
        errors = {k: sum(r.errors.get(k, 0) for r in recs) for k in ERROR_KINDS}
        out.append(
            Summary(
                contender=contender,
                workload=workload,
                rounds=len(recs),
                failed_rounds=len(recs) - len(ok),
                rps=median(r.rps for r in ok),
                p50_ms=median(r.p50_ms for r in ok),
                p99_ms=median(r.p99_ms for r in ok),
                cpu_us_per_req=median(r.cpu_us_per_req for r in ok),
                peak_rss_mb=median(r.peak_rss_mb for r in ok),
                errors=errors,
                other_cores=median(r.other_cores for r in ok),
                failure=next((r.failure for r in recs if r.failure), ""),
            )
        )
    return out


def ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference == 0:
        return None
    return value / reference
