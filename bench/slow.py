"""A balancing benchmark: three servers, one slow, and who answers fastest.

    python -m bench.slow            3 rounds of 10 s per contender, docs/benchmarks-balancing.md
    python -m bench.slow --quick    1 round of 3 s, bench/results/quick/balancing.md

Three `rota backend` processes on 127.0.0.1, one of them with every answer delayed by 50 ms
(`--delay 0.05`), the others immediate. `wrk` keeps 30 connections busy against each
contender in turn: rota balancing by `round_robin`, `least_requests` and `p2c`, and HAProxy
with `balance leastconn`, all with one worker/thread. Reported: requests/s, p50 and p99
latency, and each server's share of the answers (from their `X-Served-By` header, counted by
a wrk script). Round robin sends a third of the requests to the slow server whatever it does;
a policy that reacts to load sends it far fewer, and its p99 shows it.

Every process is started here and stopped by PID in a `finally`; all traffic goes to
127.0.0.1; every run is bounded in time.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.install import ensure_tools
from bench.machine import require_current_build
from bench.procs import LOOPBACK, Proc, free_ports, wait_ready

CONNECTIONS = 30
SLOW_SECONDS = 0.05
POLICIES = ("round_robin", "least_requests", "p2c")
ROOT = Path(__file__).resolve().parents[1]

# Counts the answers per server across wrk's threads, then prints them with the latency
# percentiles (microseconds) in lines parse() reads.
SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {} end
function response(status, headers, body)
  -- HAProxy sends header names lower-cased: look the name up in any case.
  local s = "?"
  for k, v in pairs(headers) do
    if string.lower(k) == "x-served-by" then s = v end
  end
  counts[s] = (counts[s] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do total[k] = (total[k] or 0) + v end
  end
  for k, v in pairs(total) do io.write(string.format("served %s %d\\n", k, v)) end
  io.write(string.format("p50 %d\\np99 %d\\n", latency:percentile(50), latency:percentile(99)))
  io.write(string.format("requests %d\\nerrors %d\\nmicroseconds %d\\n", summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout, summary.duration))
end
"""


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    served: dict[str, int] = field(default_factory=dict)

    def share(self, server: str) -> float:
        total = sum(self.served.values())
        return self.served.get(server, 0) / total if total else 0.0


def parse(text: str) -> Run:
    values = dict(re.findall(r"^(p50|p99|requests|errors|microseconds) (\d+)$", text, re.M))
    served = {k: int(v) for k, v in re.findall(r"^served (\S+) (\d+)$", text, re.M)}
    if "requests" not in values:
        raise RuntimeError(f"bench.slow: wrk printed no summary:\n{text[-500:]}")
    seconds = int(values["microseconds"]) / 1e6
    return Run(
        rps=int(values["requests"]) / seconds,
        p50_ms=int(values["p50"]) / 1000,
        p99_ms=int(values["p99"]) / 1000,
        errors=int(values["errors"]),
        served=served,
    )


def rota_config(port: int, servers: Sequence[int], policy: str) -> str:
    listed = ", ".join(
        f'{{ host = "{LOOPBACK}", port = {p}, name = "s{i}" }}' for i, p in enumerate(servers, 1)
    )
    return f"""[listeners.web]
bind = "{LOOPBACK}:{port}"
routes = [{{ pool = "app" }}]

[pools.app]
algorithm = "{policy}"
servers = [{listed}]
health_check = {{ interval = 60, timeout = 5 }}
"""


def haproxy_config(port: int, servers: Sequence[int]) -> str:
    listed = "\n".join(f"    server s{i} {LOOPBACK}:{p}" for i, p in enumerate(servers, 1))
    return f"""global
    nbthread 1
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend fe
    bind {LOOPBACK}:{port}
    default_backend be
backend be
    balance leastconn
    http-reuse always
{listed}
"""


def wrk(tools: dict[str, str], port: int, seconds: int, script: Path) -> Run:
    argv = [
        tools["wrk"],
        "-t2",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        f"http://{LOOPBACK}:{port}/",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench.slow: wrk exited {done.returncode}: {done.stderr[-300:]}")
    return parse(done.stdout)


def contender(
    name: str, tmp: Path, port: int, servers: Sequence[int], tools: dict[str, str]
) -> Proc:
    if name == "haproxy leastconn":
        path = tmp / "haproxy.cfg"
        path.write_text(haproxy_config(port, servers))
        return Proc("haproxy", [tools["haproxy"], "-db", "-f", str(path)], tmp)
    path = tmp / f"{name}.toml"
    path.write_text(rota_config(port, servers, name))
    return Proc(f"rota-{name}", [str(ROOT / ".venv/bin/rota"), "lb", "--config", str(path)], tmp)


def measure(rounds: int, seconds: int) -> dict[str, list[Run]]:
    tools = ensure_tools()
    results: dict[str, list[Run]] = {}
    with tempfile.TemporaryDirectory(prefix="rota-bench-slow-") as tmpdir:
        tmp = Path(tmpdir)
        script = tmp / "count.lua"
        script.write_text(SCRIPT)
        *servers, port = free_ports(4)
        backends: list[Proc] = []
        try:
            for i, server in enumerate(servers, 1):
                extra = ["--delay", str(SLOW_SECONDS)] if i == 3 else []
                argv = [str(ROOT / ".venv/bin/rota"), "backend", "--port", str(server)]
                backends.append(Proc(f"s{i}", [*argv, "--name", f"s{i}", *extra], tmp).start())
                wait_ready(backends[-1], server)
            for _ in range(rounds):
                for name in (*POLICIES, "haproxy leastconn"):
                    with contender(name, tmp, port, servers, tools).start() as proc:
                        wait_ready(proc, port)
                        wrk(tools, port, 1, script)  # warm up: pooled connections
                        results.setdefault(name, []).append(wrk(tools, port, seconds, script))
                        proc.stop()
        finally:
            for backend in backends:
                backend.stop()
    return results


def report(results: dict[str, list[Run]], rounds: int, seconds: int) -> str:
    lines = [
        "# Balancing with one slow server",
        "",
        f"`python -m bench.slow`: three servers on 127.0.0.1, `s3` answering every request "
        f"{SLOW_SECONDS * 1000:.0f} ms late, the others at once; wrk with {CONNECTIONS} "
        f"keep-alive connections for {seconds} s per run, {rounds} round(s), contenders in "
        "turn; one worker/thread each. Medians over the rounds.",
        "",
        "| contender | req/s | p50 ms | p99 ms | s1 | s2 | s3 (slow) | errors |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, runs in results.items():

        def med(values: list[float]) -> float:
            return statistics.median(values)

        lines.append(
            f"| {name} | {med([r.rps for r in runs]):,.0f} | "
            f"{med([r.p50_ms for r in runs]):.2f} | {med([r.p99_ms for r in runs]):.2f} | "
            + " | ".join(f"{med([r.share(s) for r in runs]):.1%}" for s in ("s1", "s2", "s3"))
            + f" | {sum(r.errors for r in runs)} |"
        )
    p2c = statistics.median([r.p99_ms for r in results.get("p2c", [])] or [0])
    hap = statistics.median([r.p99_ms for r in results.get("haproxy leastconn", [])] or [0])
    verdict = "PASS" if 0 < p2c <= hap else "FAIL"
    lines += [
        "",
        f"Target (issue 14): rota's `p2c` p99 at most HAProxy leastconn's p99: {p2c:.2f} ms "
        f"against {hap:.2f} ms: **{verdict}**.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.slow", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1 round of 3 s, not written to docs/")
    args = p.parse_args()
    require_current_build("bench.slow")
    rounds, seconds = (1, 3) if args.quick else (3, 10)
    text = report(measure(rounds, seconds), rounds, seconds)
    out = ROOT / (
        "bench/results/quick/balancing.md" if args.quick else "docs/benchmarks-balancing.md"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
