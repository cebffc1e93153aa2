"""What one policy's run gives: counts, latency percentiles, shares; as a table and as JSON.

Latency is a completed request's time from arrival to its answer (the pool's queue, the
server's queue and the service), the `finished - started` a policy hears. Percentiles are
nearest-rank over every completed request (no sampling, no histogram buckets).
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from typing import Any

PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p999", 0.999))


@dataclass(slots=True)
class Result:
    algorithm: str  # the policy's label (its algorithm unless the scenario names it)
    servers: tuple[str, ...]
    latencies: array[float] = field(default_factory=lambda: array("d"))
    served: list[int] = field(default_factory=list)  # completed, per server
    rejected: int = 0  # 503: no server could take it (none up, or the queue timed out)
    failed: int = 0  # 502: its server died under it and no other was left
    queued: int = 0  # waited in the pool's queue (every server at max_requests)
    retried: int = 0  # attempts refused or lost, then sent to another server
    first: float = 0.0  # first arrival, simulated seconds
    last: float = 0.0  # last answer
    wall: float = 0.0  # seconds the run took
    # Each server's in-flight count (Backend.active) at sample times.
    times: list[float] = field(default_factory=list)
    in_flight: list[list[int]] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return len(self.latencies)

    def summary(self) -> dict[str, Any]:
        """The `--json` entry: the issue's keys, latencies in seconds."""
        ordered = sorted(self.latencies)
        n = len(ordered)
        total = sum(self.served) or 1
        span = self.last - self.first
        out: dict[str, Any] = {
            "algorithm": self.algorithm,
            "completed": n,
            "rejected": self.rejected,
            "failed": self.failed,
            "queued": self.queued,
            "retried": self.retried,
            "throughput": n / span if span > 0 else 0.0,
            "mean": math.fsum(ordered) / n if n else None,
        }
        for name, q in PERCENTILES:
            out[name] = ordered[max(0, math.ceil(q * n) - 1)] if n else None
        out["max"] = ordered[-1] if n else None
        out["share"] = {name: c / total for name, c in zip(self.servers, self.served, strict=True)}
        out["simulated_seconds"] = span
        out["wall_seconds"] = self.wall
        return out


def _ms(value: object) -> str:
    return f"{value * 1000:.1f}" if isinstance(value, float) else "-"


def table(summaries: list[dict[str, Any]], max_servers: int = 12) -> str:
    """One block per policy: throughput, latencies (ms), counts, then each server's share."""
    lines: list[str] = []
    head = (
        "policy",
        "req/s",
        "mean",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "queued",
        "rejected",
        "failed",
    )
    rows = [head]
    for s in summaries:
        rows.append(
            (
                s["algorithm"],
                f"{s['throughput']:.1f}",
                *(_ms(s[k]) for k in ("mean", "p50", "p90", "p99", "p999", "max")),
                str(s["queued"]),
                str(s["rejected"]),
                str(s["failed"]),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for k, r in enumerate(rows):
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths) + "   (latencies in ms)")
    lines.append("")
    lines.append("share of requests by server:")
    for s in summaries:
        share: dict[str, float] = s["share"]
        items = list(share.items())
        shown = items if len(items) <= max_servers else _extremes(items, max_servers)
        text = "  ".join(f"{name} {frac * 100:.1f}%" for name, frac in shown)
        more = "" if len(items) <= max_servers else f"  (of {len(items)}: lowest and highest)"
        lines.append(f"  {s['algorithm']}: {text}{more}")
    return "\n".join(lines) + "\n"


def _extremes(items: list[tuple[str, float]], keep: int) -> list[tuple[str, float]]:
    ordered = sorted(items, key=lambda item: item[1])
    half = keep // 2
    return ordered[:half] + ordered[-half:]
