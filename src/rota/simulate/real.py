"""`rota simulate --real`: the scenario on loopback, beside its simulation.

For each policy: one `rota backend` process per server (`--service-time`, `--concurrency`
from the scenario), one `rota lb` with that policy in front of them, and an open-loop
Poisson client at the scenario's rate for `--duration` seconds (keep-alive connections,
a new one whenever none is idle, so a slow answer never holds back the next arrival).
Then the simulation of the same scenario with as many requests as were sent, and both
side by side. Every process is started here and stopped by its PID; all traffic stays on
127.0.0.1; each run is bounded by `--duration` plus a drain of at most DRAIN seconds.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from rota.simulate.dists import Dist
from rota.simulate.results import Result
from rota.simulate.run import Options, report, simulate
from rota.simulate.scenario import PolicyRun, Scenario, ScenarioError, load_scenario

LOOPBACK = "127.0.0.1"
DRAIN = 10.0  # seconds the client waits for answers after its last arrival
START = 15.0  # seconds a process has to answer after start
MAX_REAL_SERVERS = 64  # processes on a 2-core machine: beyond this the figures mean little


@dataclass
class Measured:
    latencies: list[float] = field(default_factory=list)
    served: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    errors: int = 0


def service_flag(dist: Dist) -> str:
    if dist.kind == "exponential":
        return f"exponential:{dist.mean!r}"
    if dist.kind == "lognormal":
        return f"lognormal:{dist.mean!r}:{dist.sigma!r}"
    return f"constant:{dist.mean!r}"


def check_real(scenario: Scenario) -> None:
    """What --real can run: a Poisson rate, modelled servers (not empirical), few of them."""
    if scenario.load.kind != "poisson" or scenario.load.schedule:
        raise ScenarioError(scenario.source, "load.kind", "--real runs a Poisson load at one rate")
    if len(scenario.servers) > MAX_REAL_SERVERS:
        raise ScenarioError(
            scenario.source,
            "servers",
            f"--real starts one process per server: at most {MAX_REAL_SERVERS}",
        )
    for i, server in enumerate(scenario.servers):
        if server.service is None or server.service.kind == "empirical":
            raise ScenarioError(
                scenario.source,
                f"servers[{i}].service",
                "--real needs exponential, lognormal or constant service times",
            )
    if scenario.events:
        raise ScenarioError(scenario.source, "events", "--real does not play events")


def free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _answers(port: int, path: str) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1.0) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            return s.recv(16).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


class Child:
    """A process started here, its output in a file, stopped by its PID."""

    def __init__(self, argv: list[str], log: IO[bytes]) -> None:
        self.argv = " ".join(argv)
        self.popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, port: int, path: str) -> None:
        deadline = time.monotonic() + START
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.argv} exited with {self.popen.returncode}")
            if _answers(port, path):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.argv} did not answer on port {port}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return (
            "{ "
            + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items())
            + " }"
        )
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def lb_config(run: PolicyRun, ports: list[int], listen: int, scenario: Scenario) -> str:
    spec = run.pool
    lines = [
        "[listeners.sim]",
        f'bind = "{LOOPBACK}:{listen}"',
        "[[listeners.sim.routes]]",
        'pool = "sim"',
        "[pools.sim]",
        f"algorithm = {json.dumps(spec.algorithm)}",
        f"slow_start = {spec.slow_start!r}",
        f"queue_timeout = {spec.queue_timeout!r}",
        f"health_check = {{ interval = {scenario.health.interval!r}, rise = "
        f"{scenario.health.rise}, fall = {scenario.health.fall} }}",
    ]
    if spec.algorithm == "hash":
        lines.append(f"key = {json.dumps(spec.hash_key)}")
        if spec.hash_balance_factor:
            lines.append(f"hash_balance_factor = {spec.hash_balance_factor!r}")
    if spec.options:
        lines.append(f"options = {_toml_value(spec.options)}")
    servers = []
    for server, port in zip(spec.servers, ports, strict=True):
        extra = f", max_requests = {server.max_requests}" if server.max_requests else ""
        servers.append(
            f'  {{ name = "{server.name}", host = "{LOOPBACK}", port = {port}, '
            f"weight = {server.weight}{extra} }},"
        )
    return "\n".join([*lines, "servers = [", *servers, "]", ""])


async def poisson_client(
    port: int, rate: float, duration: float, limit: int, seed: int
) -> Measured:
    """Open loop: requests at Poisson times, each on an idle connection or a new one."""
    rng = random.Random(f"{seed}/real")
    loop = asyncio.get_running_loop()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    out = Measured()
    tasks: set[asyncio.Task[None]] = set()

    async def one(sent_at: float) -> None:
        conn = idle.pop() if idle else None
        try:
            if conn is None:
                conn = await asyncio.open_connection(LOOPBACK, port)
            reader, writer = conn
            writer.write(b"GET / HTTP/1.1\r\nHost: simulate\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            server = "?"
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                elif name.lower() == b"x-served-by":
                    server = value.strip().decode()
            await reader.readexactly(length)
            ok = head.startswith(b"HTTP/1.1 200")
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            out.errors += 1
            return
        if not ok:
            out.errors += 1
        else:
            out.latencies.append(loop.time() - sent_at)
            out.served[server] = out.served.get(server, 0) + 1
        idle.append(conn)

    start = loop.time()
    due = start
    while out.sent < limit:
        due += rng.expovariate(rate)
        if due - start > duration:
            break
        wait = due - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        out.sent += 1
        task = loop.create_task(one(due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(set(tasks), timeout=DRAIN)
    for task in list(tasks):
        task.cancel()
        out.errors += 1
    for _, writer in idle:
        writer.close()
    return out


def percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def measure(scenario: Scenario, run: PolicyRun, duration: float, workdir: Path) -> Measured:
    ports = free_ports(len(scenario.servers) + 1)
    listen, backend_ports = ports[0], ports[1:]
    rota = [sys.executable, "-m", "rota"]
    children: list[Child] = []
    log = (workdir / f"{run.label}.log").open("wb")
    try:
        for server, port in zip(scenario.servers, backend_ports, strict=True):
            if server.service is None:
                continue
            argv = [*rota, "backend", "--port", str(port), "--name", server.name]
            argv += ["--service-time", service_flag(server.service)]
            argv += ["--concurrency", str(server.concurrency)]
            children.append(Child(argv, log))
        for child, port in zip(children, backend_ports, strict=True):
            child.wait_ready(port, "/health")
        config = workdir / f"{run.label}.toml"
        config.write_text(lb_config(run, backend_ports, listen, scenario))
        lb = Child([*rota, "lb", "--config", str(config)], log)
        children.append(lb)
        lb.wait_ready(listen, "/health")
        limit = scenario.requests
        return asyncio.run(
            poisson_client(listen, scenario.load.rate, duration, limit, scenario.seed)
        )
    finally:
        for child in children:
            child.stop()
        log.close()


def side_by_side(simulated: list[dict[str, Any]], measured: dict[str, Measured]) -> str:
    pair = f"{'sim':>8} {'real':>8} {'diff':>6}"
    head = f"{'policy':<16} {'sent':>6} {'errors':>6}  p50 {pair}  p99 {pair}"
    lines = [head, "-" * len(head) + "   (ms)"]
    for s in simulated:
        m = measured[s["algorithm"]]
        ordered = sorted(m.latencies)
        cells = [f"{s['algorithm']:<16} {m.sent:>6} {m.errors:>6}"]
        for key, q in (("p50", 0.5), ("p99", 0.99)):
            sim = s[key]
            real = percentile(ordered, q)
            diff = f"{(real - sim) / sim * 100:+.0f}%" if sim and real is not None else "-"
            sim_ms = f"{sim * 1000:.1f}" if sim is not None else "-"
            real_ms = f"{real * 1000:.1f}" if real is not None else "-"
            cells.append(f"    {sim_ms:>8} {real_ms:>8} {diff:>6}")
        lines.append("  ".join(cells))
    return "\n".join(lines) + "\n"


def compare(
    scenario: Scenario, duration: float
) -> tuple[list[dict[str, Any]], dict[str, Measured]]:
    """Measure every policy on loopback, then simulate as many requests as were sent."""
    check_real(scenario)
    measured: dict[str, Measured] = {}
    with tempfile.TemporaryDirectory(prefix="rota-simulate-real-") as tmp:
        for run in scenario.policies:
            print(
                f"rota simulate --real: {run.label} on loopback for {duration:g} s", file=sys.stderr
            )
            measured[run.label] = measure(scenario, run, duration, Path(tmp))
    sent = max(1, max(m.sent for m in measured.values()))
    results: list[Result] = simulate(replace(scenario, requests=sent), Options(progress=False))
    return report(scenario, results)["policies"], measured


def main_real(path: Path, options: Options, duration: float) -> int:
    try:
        scenario = load_scenario(path)
        if options.seed is not None:
            scenario = replace(scenario, seed=options.seed)
        if options.max_requests is not None:
            scenario = replace(scenario, requests=min(scenario.requests, options.max_requests))
        check_real(scenario)
    except ScenarioError as exc:
        print(f"rota simulate: {exc}", file=sys.stderr)
        return 2
    try:
        simulated, measured = compare(scenario, duration)
    except RuntimeError as exc:
        print(f"rota simulate --real: {exc}", file=sys.stderr)
        return 1
    if options.as_json:
        rows = []
        for s in simulated:
            m = measured[s["algorithm"]]
            ordered = sorted(m.latencies)
            total = sum(m.served.values()) or 1
            rows.append(
                {
                    "algorithm": s["algorithm"],
                    "simulated": s,
                    "measured": {
                        "sent": m.sent,
                        "completed": len(ordered),
                        "errors": m.errors,
                        "mean": sum(ordered) / len(ordered) if ordered else None,
                        "p50": percentile(ordered, 0.5),
                        "p90": percentile(ordered, 0.9),
                        "p99": percentile(ordered, 0.99),
                        "max": ordered[-1] if ordered else None,
                        "share": {k: v / total for k, v in sorted(m.served.items())},
                    },
                }
            )
        print(json.dumps({"scenario": scenario.source, "policies": rows}, indent=2))
    else:
        sys.stdout.write(side_by_side(simulated, measured))
    return 0
