"""Connection reuse under many clients: backend connections opened against clients.

    python -m bench.reuse            3 rounds of 10 s per contender, docs/benchmarks-reuse.md
    python -m bench.reuse --quick    1 round of 3 s, bench/results/quick/reuse.md

Three nginx backends (one nginx, one worker, `200 ok`, keep-alive without a request limit)
and `wrk -c500` against rota (one worker) and HAProxy (one thread, `http-reuse always`) in
turn, each started fresh. Reported per run: the backend connections the proxy opened from
its start to the end of the run (nginx's stub_status `accepts`, read before and after; rota's
health probes, about two a server in a run, are among them), against the 500 clients;
requests/s, p99 and wrk's timeouts (a request slower than 2 s). A proxy that keeps too few
idle connections closes them under load and opens new ones for the next requests: issue 19
saw rota open about 4,000 in 4 s with 128 kept per server. Target: rota opens at most 1.5
times as many backend connections as it has clients, with no timeout.

Every process is started here and stopped by PID in a `finally`; all traffic goes to
127.0.0.1; every run is bounded in time.
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.contenders import haproxy_conf, nginx_argv, nginx_backend_conf, rota_config
from bench.install import ensure_tools
from bench.machine import require_current_build
from bench.procs import LOOPBACK, Proc, free_ports, wait_ready
from bench.wrkrun import DONE_LUA, Workload, run_wrk, wrk_argv

CLIENTS = 500
BACKENDS = 3
CONTENDERS = ("rota", "haproxy")
ROOT = Path(__file__).resolve().parents[1]
MAXCONN = 4096  # HAProxy's and the nginx backends': well above the clients


@dataclass
class Run:
    opened: int
    rps: float
    p99_ms: float
    timeouts: int
    other_errors: int


def accepted(status_port: int) -> int:
    """Connections the backends' nginx has accepted (stub_status), not counting this query."""
    with socket.create_connection((LOOPBACK, status_port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: status\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    found = re.search(rb"\n\s*(\d+) (\d+) (\d+)", data)
    if found is None:
        raise RuntimeError(f"bench.reuse: no stub_status counts in {data[:200]!r}")
    return int(found.group(1)) - 1


def contender(name: str, tmp: Path, port: int, backends: Sequence[int], haproxy: str) -> Proc:
    if name == "haproxy":
        path = tmp / "haproxy.cfg"
        path.write_text(haproxy_conf("http", port, backends, MAXCONN))
        return Proc("haproxy", [haproxy, "-db", "-f", str(path)], tmp)
    path = tmp / "rota.json"
    path.write_text(rota_config(backends))
    # This interpreter: `make bench` runs .venv's, with the checkout's rota (compiled if built).
    argv = [sys.executable, "-m", "rota", "lb", "--port", str(port), "--config", str(path)]
    return Proc("rota", argv, tmp)


def measure(rounds: int, seconds: int) -> dict[str, list[Run]]:
    tools = ensure_tools()
    results: dict[str, list[Run]] = {}
    workload = Workload("ka500", f"keep-alive, {CLIENTS} conns", CLIENTS, False)
    with tempfile.TemporaryDirectory(prefix="rota-bench-reuse-") as tmpdir:
        tmp = Path(tmpdir)
        lua = tmp / "done.lua"
        lua.write_text(DONE_LUA)
        *backends, status, port = free_ports(BACKENDS + 2)
        conf = nginx_backend_conf(tmp, backends, MAXCONN, status_port=status)
        with Proc("backends", nginx_argv(tmp, conf), tmp).start() as nginx:
            for backend in backends:
                wait_ready(nginx, backend)
            for _ in range(rounds):
                for name in CONTENDERS:
                    before = accepted(status)
                    with contender(name, tmp, port, backends, tools["haproxy"]).start() as proc:
                        wait_ready(proc, port)
                        url = f"http://{LOOPBACK}:{port}/"
                        result = run_wrk(wrk_argv(workload, seconds, url, lua), seconds)
                        opened = accepted(status) - before
                    timeouts = result.errors["timeout"]
                    run = Run(
                        opened=opened,
                        rps=result.rps,
                        p99_ms=result.p99_ms,
                        timeouts=timeouts,
                        other_errors=result.error_total - timeouts,
                    )
                    results.setdefault(name, []).append(run)
                    print(
                        f"bench.reuse: {name:8} opened {opened:6,} for {CLIENTS} clients  "
                        f"{run.rps:8,.0f} req/s  p99 {run.p99_ms:7.1f} ms  "
                        f"timeouts {timeouts}  other errors {run.other_errors}",
                        flush=True,
                    )
    return results


def report(results: dict[str, list[Run]], rounds: int, seconds: int) -> str:
    lines = [
        "# Connection reuse under many clients",
        "",
        f"`python -m bench.reuse`: `wrk -t1 -c{CLIENTS} -d{seconds}s --timeout 2s` against each "
        f"contender, three nginx backends on 127.0.0.1 behind it; {rounds} round(s), each "
        "contender started fresh; one worker/thread each. *Opened*: backend connections "
        "accepted by the nginx backends from the contender's start to the end of its run "
        "(stub_status), with rota's few health probes. Medians over the rounds; timeouts "
        "summed. The machine is shared: compare within one run.",
        "",
        "| contender | clients | opened (median) | opened / clients | req/s | p99 ms | "
        "timeouts | other errors |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, runs in results.items():
        opened = statistics.median([r.opened for r in runs])
        lines.append(
            f"| {name} | {CLIENTS} | {opened:,.0f} | {opened / CLIENTS:.2f} | "
            f"{statistics.median([r.rps for r in runs]):,.0f} | "
            f"{statistics.median([r.p99_ms for r in runs]):.1f} | "
            f"{sum(r.timeouts for r in runs)} | {sum(r.other_errors for r in runs)} |"
        )
    rota = results.get("rota", [])
    most = max((r.opened for r in rota), default=0)
    timeouts = sum(r.timeouts for r in rota)
    verdict = "PASS" if rota and most <= 1.5 * CLIENTS and timeouts == 0 else "FAIL"
    lines += [
        "",
        f"Target (issue 19): rota opens at most {1.5 * CLIENTS:,.0f} backend connections "
        f"(1.5 x {CLIENTS} clients) with no timeout: at most {most:,} opened, "
        f"{timeouts} timeouts: **{verdict}**.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.reuse", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1 round of 3 s, not written to docs/")
    args = p.parse_args()
    require_current_build("bench.reuse")
    rounds, seconds = (1, 3) if args.quick else (3, 10)
    text = report(measure(rounds, seconds), rounds, seconds)
    out = ROOT / ("bench/results/quick/reuse.md" if args.quick else "docs/benchmarks-reuse.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
