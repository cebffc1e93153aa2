"""What watching rota costs: CPU per request with metrics off and on, at keep-alive 50.

    python -m bench.observe              5 rounds of 5 s per variant (--rounds N)
    python -m bench.observe --quick      1 round of 2 s

Three `rota backend` processes and rota on 127.0.0.1; `wrk -t2 -c50` keep-alive against each
variant in turn, rounds interleaved so that a change in the machine's load hits every
variant alike. Reported: requests/s and rota's CPU (every process of its tree, from /proc)
per request, medians of the rounds. With metrics on, /metrics is scraped once a second
during the run, as a dashboard would. Every process is started here and stopped by PID;
every run is bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.contenders import rota_backends, serving
from bench.install import ensure_tools
from bench.machine import require_current_build
from bench.procs import LOOPBACK, Proc, free_ports, wait_ready
from bench.procstat import cpu_seconds_between, tree_cpu_ticks

ROTA = [sys.executable, "-m", "rota"]


@dataclass
class Variant:
    name: str
    extra: list[str]
    scrape: bool = False
    cpu_us: list[float] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)


def wrk(port: int, seconds: float) -> float:
    out = subprocess.run(
        ["wrk", "-t2", "-c50", f"-d{max(1, round(seconds))}s", f"http://{LOOPBACK}:{port}/"],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    match = re.search(r"(\d+) requests in", out)
    if match is None:
        raise RuntimeError(f"bench.observe: wrk printed no total:\n{out}")
    return float(match.group(1))


def scraper(port: int, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=2).read()


def run_variant(v: Variant, backends: list[int], seconds: float, tmp: Path) -> None:
    port, admin = free_ports(2)
    servers = ",".join(f'{{"host": "{LOOPBACK}", "port": {p}}}' for p in backends)
    config = tmp / f"{v.name}.json"
    config.write_text(f'{{"server_list": [{servers}], "health_check": {{"interval": 30}}}}')
    extra = [a.replace("ADMIN", f"{LOOPBACK}:{admin}") for a in v.extra]
    argv = [*ROTA, "lb", "--config", str(config), "--port", str(port), *extra]
    with Proc(v.name, argv, tmp).start() as proc:
        wait_ready(proc, port)
        wrk(port, 1.0)  # warm up: connections pooled, caches filled
        stop = threading.Event()
        thread = threading.Thread(target=scraper, args=(admin, stop), daemon=True)
        if v.scrape:
            thread.start()
        before = tree_cpu_ticks(proc.pid)
        start = time.monotonic()
        requests = wrk(port, seconds)
        elapsed = time.monotonic() - start
        after = tree_cpu_ticks(proc.pid)
        stop.set()
        if v.scrape:
            thread.join()
    v.cpu_us.append(cpu_seconds_between(before, after) * 1e6 / requests)
    v.rps.append(requests / elapsed)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.observe", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rounds", type=int)
    p.add_argument("--seconds", type=float)
    args = p.parse_args()
    require_current_build("bench.observe")
    rounds = args.rounds or (1 if args.quick else 5)
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    ensure_tools()
    variants = [
        Variant("off", []),
        Variant("metrics", ["--admin", "ADMIN"], scrape=True),
        # The admin listener runs rota as a supervisor and workers: these two compare the
        # counting alone, both in that shape.
        Variant("off, 2 workers", ["--workers", "2"]),
        Variant("metrics, 2 workers", ["--workers", "2", "--admin", "ADMIN"], scrape=True),
    ]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        with serving(*rota_backends(tmp, ROTA)) as ports:
            for r in range(rounds):
                for v in variants:
                    run_variant(v, ports, seconds, tmp)
                    print(
                        f"round {r + 1} {v.name}: {v.rps[-1]:,.0f} req/s, "
                        f"{v.cpu_us[-1]:.1f} us CPU/req",
                        flush=True,
                    )
    base = statistics.median(variants[0].cpu_us)
    # Each variant's "on" against its own "off" of the same round (the rounds interleave):
    # the median of those paired ratios cancels the machine's drift between rounds,
    # which moves single rounds by more than the counters cost.
    pairs = {1: variants[0], 3: variants[2]}
    print(
        "\n| variant | requests/s | rota CPU per request | vs off (medians) "
        "| vs its own off, paired by round |\n|---|---|---|---|---|"
    )
    for i, v in enumerate(variants):
        cpu = statistics.median(v.cpu_us)
        paired = ""
        off = pairs.get(i)
        if off is not None:
            ratios = [on / o for on, o in zip(v.cpu_us, off.cpu_us, strict=True)]
            paired = f"{(statistics.median(ratios) - 1) * 100:+.1f}%"
        print(
            f"| {v.name} | {statistics.median(v.rps):,.0f} | {cpu:.1f} us | "
            f"{(cpu / base - 1) * 100:+.1f}% | {paired} |"
        )


if __name__ == "__main__":
    main()
