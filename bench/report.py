"""The results as markdown: the table printed at the end of a run and docs/benchmarks.md."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.held import HeldResult
from bench.stats import RunRecord, Summary, ratio, summarise
from bench.targets import TargetLine, check_targets
from bench.wrkrun import WORKLOADS

# key, label, mode, family: the contenders in table order.
ContenderInfo = tuple[str, str, str, str]


@dataclass
class Report:
    contenders: list[ContenderInfo]
    records: list[RunRecord] = field(default_factory=list)
    held: list[HeldResult] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # key -> why
    machine: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    configs: dict[str, str] = field(default_factory=dict)  # title -> file text
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Report:
        data: dict[str, Any] = json.loads(text)
        data["contenders"] = [tuple(c) for c in data["contenders"]]
        data["records"] = [RunRecord(**r) for r in data["records"]]
        data["held"] = [HeldResult(**h) for h in data["held"]]
        return cls(**data)

    def table(self) -> dict[tuple[str, str], Summary]:
        return {(s.contender, s.workload): s for s in summarise(self.records)}

    def targets(self) -> list[TargetLine]:
        table = self.table()
        rota_keys = tuple(
            k for k in ("rota-1w", "rota-auto") if any(key == k for key, _ in table)
        ) or ("rota-1w",)
        rota_held = next((h for h in self.held if h.contender == "rota-1w"), None)
        if rota_held is None:
            return check_targets(table, rota_keys, None, "held connections step did not run")
        note = held_problems(rota_held)
        return check_targets(table, rota_keys, rota_held.kib_per_conn, note)


def held_problems(h: HeldResult) -> str:
    parts = []
    if h.held < h.wanted:
        parts.append(f"only {h.held:,} of {h.wanted:,} connections held")
    if h.failures:
        parts.append("failures: " + ", ".join(f"{k} x{v}" for k, v in h.failures.items()))
    if h.note:
        parts.append(h.note)
    return "; ".join(parts)


def _num(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _labels(report: Report) -> dict[str, str]:
    return {key: label for key, label, _, _ in report.contenders}


def results_table(report: Report) -> str:
    table = report.table()
    labels = _labels(report)
    lines = [
        "| Workload | Contender | req/s | p50 ms | p99 ms | errors | CPU µs/req | peak RSS MB "
        "| req/s vs HAProxy | req/s vs nginx | CPU vs HAProxy | CPU vs nginx | other load |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for workload in WORKLOADS:
        for key, label, mode, _ in report.contenders:
            s = table.get((key, workload.key))
            if s is None:
                continue
            if s.rps is None:
                why = f"failed in all {s.rounds} rounds: {s.failure[:200]}"
                lines.append(f"| {workload.label} | {label} | {why} |" + " |" * 10)
                continue
            hap = table.get(("haproxy-tcp" if mode == "tcp" else "haproxy", workload.key))
            ngx = table.get(("nginx", workload.key)) if mode == "http" else None
            errors = ", ".join(f"{k} {v:,}" for k, v in s.errors.items() if v) or "0"
            if s.failed_rounds:
                errors += f" ({s.failed_rounds} failed rounds)"
            lines.append(
                f"| {workload.label} | {label} | {_num(s.rps)} | {_num(s.p50_ms, 2)} "
                f"| {_num(s.p99_ms, 2)} | {errors} | {_num(s.cpu_us_per_req, 1)} "
                f"| {_num(s.peak_rss_mb, 1)} "
                f"| {_ratio(ratio(s.rps, hap.rps if hap else None))} "
                f"| {_ratio(ratio(s.rps, ngx.rps if ngx else None))} "
                f"| {_ratio(ratio(s.cpu_us_per_req, hap.cpu_us_per_req if hap else None))} "
                f"| {_ratio(ratio(s.cpu_us_per_req, ngx.cpu_us_per_req if ngx else None))} "
                f"| {_num(s.other_cores, 2)} |"
            )
    for key, why in report.unavailable.items():
        lines.append(f"| all | {labels.get(key, key)} | not available: {why} |" + " |" * 10)
    return "\n".join(lines)


def held_table(report: Report) -> str:
    if not report.held:
        return "The held connections step did not run."
    labels = _labels(report)
    lines = [
        "| Contender | held / wanted | open time s | RSS before MB | RSS held MB "
        "| KiB per conn | RSS after close MB | fresh client: connect + 1st req ms "
        "| next 20 req p50 / max ms | problems |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for h in report.held:
        lines.append(
            f"| {labels.get(h.contender, h.contender)} | {h.held:,} / {h.wanted:,} "
            f"| {h.open_seconds:.1f} | {h.rss_before_kib / 1024:.1f} "
            f"| {h.rss_held_kib / 1024:.1f} | {_num(h.kib_per_conn, 1)} "
            f"| {h.rss_after_close_kib / 1024:.1f} | {_num(h.fresh_first_ms, 2)} "
            f"| {_num(h.fresh_p50_ms, 2)} / {_num(h.fresh_max_ms, 2)} "
            f"| {held_problems(h) or 'none'} |"
        )
    return "\n".join(lines)


def targets_list(lines: Sequence[TargetLine]) -> str:
    return "\n".join(f"- **{t.status}** {t.target}: {t.detail}" for t in lines)


def render_doc(report: Report, chart_name: str | None, title: str) -> str:
    s = report.settings
    out = [
        f"# {title}",
        "",
        "Generated by `make bench` (`python -m bench.run`); do not edit by hand. "
        f"Run started {s.get('started', '?')}, took {s.get('elapsed', '?')}.",
        "",
        "rota against HAProxy, nginx and direct-to-backend, same backends, same machine, "
        "one contender at a time. Where rota's CPU goes and what stands in the way of the "
        "targets it misses: [performance.md](performance.md).",
        "",
        "## Method",
        "",
        "- Backends: one nginx (worker_processes 1, access_log off) answering a fixed "
        "`200 ok` on three loopback ports, shared by every contender; direct-to-backend "
        "uses the first port only (the ceiling).",
        f"- Load: wrk, {s.get('wrk_threads', '?')} thread, `--timeout "
        f"{s.get('wrk_timeout', '?')}`; {s.get('duration', '?')} per run after a "
        f"{s.get('warmup', '?')} warm-up run (not counted); {s.get('rounds', '?')} rounds; "
        "the contender order is reversed every other round. wrk, the load balancer and the "
        "backends share the machine's cores.",
        "- Each contender is started fresh (own temp dir and config) for every run and "
        "stopped by PID after it.",
        "- Figures are medians over rounds; errors are summed over all rounds "
        "(wrk: connect, read, write, timeout, and `status` = non-2xx/3xx responses).",
        "- CPU µs/req: utime + stime of the load balancer's processes (main process and all "
        "its descendants, from /proc/PID/stat) during the measured run, divided by the "
        "requests wrk completed. Peak RSS: VmHWM summed over those processes.",
        "- Before each run the bench waits (at most "
        f"{s.get('quiet_wait', '?')}) for the machine to be nearly idle (< 0.25 cores busy).",
        "- Other load: CPU cores the rest of the machine kept busy during the run (all CPUs' "
        "busy time from /proc/stat, softirq excluded since loopback traffic is processed there, "
        "minus the load balancer, wrk, the backends and the bench itself). Anything well "
        "above 0 means another job shared the machine and the row is less trustworthy. "
        f"Load average at start {s.get('loadavg_start', '?')}, at end "
        f"{s.get('loadavg_end', '?')}.",
        "- Ratios compare with HAProxy in the same mode (HTTP rows with `mode http`, TCP rows "
        "with `mode tcp`) and with nginx (HTTP rows only).",
        "- The Python floor (`bench/floor.py`) is not a load balancer: each client connection "
        "is paired with a backend connection and every chunk is fed to an httptools parser "
        "without callbacks, the least an HTTP proxy on CPython + uvloop + httptools does. It "
        "shows what the stack costs before any proxy logic (keep-alive workloads only).",
        *[f"- {n}" for n in report.notes],
        "",
        "## Results",
        "",
        results_table(report),
        "",
    ]
    if chart_name:
        out += [f"![req/s and CPU per request]({chart_name})", ""]
    out += [
        "## Targets",
        "",
        "Checked automatically from the medians above (issue 5).",
        "",
        targets_list(report.targets()),
        "",
        "## Held idle connections",
        "",
        f"{s.get('held', '?')} idle keep-alive client connections, each after one completed "
        "request, opened from the bench process (asyncio) to a freshly started load balancer; "
        "its RSS (VmRSS summed over its processes) is read before and while they are held, "
        "then a fresh client connects and sends 21 requests. All connections are then closed. "
        "rota runs with `limits.max_connections` raised to the held count + 100 (its default "
        "is 10,000 per worker, which would refuse the fresh client). HAProxy and nginx are "
        f"configured for {s.get('proxy_maxconn', '?')} client connections (maxconn, "
        "worker_connections: what the file-descriptor hard limit allows at two descriptors per "
        "proxied connection) and hold 100 fewer than that; they are there for reference.",
        "",
        held_table(report),
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in report.machine.items()],
        "",
        "## Versions",
        "",
        *[f"- {k}: {v}" for k, v in report.versions.items()],
        "",
        "## Commands run",
        "",
        "Ports are picked free at each start; `PORT` is the contender's listening port, "
        "`B1..B3` the backends'.",
        "",
        "```",
        *report.commands,
        "```",
        "",
    ]
    for name, text in report.configs.items():
        out += [
            f"<details><summary>{name}</summary>",
            "",
            "```",
            text.rstrip(),
            "```",
            "",
            "</details>",
            "",
        ]
    return "\n".join(out)
