"""HTTPS benchmark: rota against HAProxy and nginx, TLS terminated by each, one ECDSA P-256
certificate shared by all.

    python -m bench.tls            3 rounds of 10 s runs; a section of docs/benchmarks.md
    python -m bench.tls --quick    1 round of 2 s runs; bench/results/quick/tls.md

Workloads (wrk, one thread, `https://127.0.0.1:PORT/`, no SNI: the default certificate):
- `new50`: a new TLS connection for every request (`Connection: close`), 50 at a time:
  handshakes per second. wrk keeps no TLS session between its connections, so every one is
  a full handshake (ECDHE + ECDSA signature) for every contender.
- `ka50`: 50 keep-alive connections over TLS: the cost of the record layer and the proxying.

Contenders, one worker/thread each, against the same three nginx backends (plain HTTP,
keep-alive): rota on uvloop (what `rota lb` runs), rota on asyncio's own loop
(`ROTA_LOOP=asyncio`: the client side's TLS is rota's own transport on either loop,
rota.tls.transport; the loop still carries the backend side), HAProxy and nginx with
Mozilla's intermediate ciphers and TLS 1.2+.

Also: a 1 GiB download through rota's TLS listener from a `rota backend`, checked byte by byte
against the backend's pattern, with rota's peak memory before and after.

Every process is started here and stopped by PID in a `finally`; all traffic goes to
127.0.0.1; every run is bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import re
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.contenders import nginx_backends
from bench.install import ensure_tools
from bench.machine import machine_info, require_current_build
from bench.procs import LOOPBACK, Proc, StartError, free_port, free_ports
from bench.procstat import (
    cpu_seconds_between,
    machine_busy_seconds,
    tree_cpu_ticks,
    tree_status_kib,
)
from bench.tls_contenders import CONNS, CONTENDERS, Cert, make_cert, rota_argv, rota_builder
from bench.wrkrun import DONE_LUA, Workload, WrkError, run_wrk, wrk_argv

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = (
    Workload("new50", "new TLS connection per request, 50 conns", 50, True),
    Workload("ka50", "keep-alive over TLS, 50 conns", 50, False),
)
# The targets of issue 17, against HAProxy.
HANDSHAKE_RATIO = 0.9  # rota's handshakes/s at least this times HAProxy's
KA_CPU_RATIO = 1.3  # rota's keep-alive CPU per request at most this times HAProxy's
BIG = 1 << 30


@dataclass
class Run:
    contender: str
    workload: str
    round: int
    rps: float = 0.0
    p99_ms: float = 0.0
    errors: int = 0
    cpu_us: float = 0.0
    failure: str = ""


@dataclass
class Results:
    settings: dict[str, str] = field(default_factory=dict)
    machine: dict[str, str] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)
    download: dict[str, object] = field(default_factory=dict)


def https_ok(port: int) -> bool:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((LOOPBACK, port), timeout=1) as raw,
            ctx.wrap_socket(raw) as s,
        ):
            s.sendall(b"GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
            return s.recv(64)[9:12] == b"200"
    except OSError:
        return False


@contextlib.contextmanager
def started(
    name: str, argv: list[str], env: dict[str, str], tmp: Path, port: int
) -> Iterator[Proc]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        proc = Proc(name, argv, tmp).start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        deadline = time.monotonic() + 15
        while not https_ok(port):
            if proc.exited() is not None or time.monotonic() > deadline:
                raise StartError(f"{name} not ready:\n{proc.log_tail()}")
            time.sleep(0.05)
        yield proc
    finally:
        proc.stop()


def wait_for_quiet(limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        busy0 = machine_busy_seconds()
        time.sleep(0.5)
        if (machine_busy_seconds() - busy0) / 0.5 < 0.25:
            return


def run_one(
    key: str,
    workload: Workload,
    round_no: int,
    tmp_root: Path,
    backends: Sequence[int],
    cert: Cert,
    duration: float,
    lua: Path,
) -> Run:
    tmp = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=tmp_root))
    port = free_port()
    argv, env = CONTENDERS[key][1](tmp, port, backends, cert)
    url = f"https://{LOOPBACK}:{port}/"
    try:
        with started(key, argv, env, tmp, port) as proc:
            run_wrk(wrk_argv(workload, 1, url, lua), 1)
            before = tree_cpu_ticks(proc.pid)
            result = run_wrk(wrk_argv(workload, duration, url, lua), duration)
            after = tree_cpu_ticks(proc.pid)
    except (StartError, WrkError, OSError) as exc:
        return Run(key, workload.key, round_no, failure=" ".join(str(exc).split())[:300])
    cpu = cpu_seconds_between(before, after) * 1e6 / max(1, result.requests)
    return Run(key, workload.key, round_no, result.rps, result.p99_ms, result.error_total, cpu)


def download(tmp_root: Path, cert: Cert) -> dict[str, object]:
    """1 GiB through rota's TLS listener from a `rota backend`, checked byte by byte."""
    tmp = Path(tempfile.mkdtemp(prefix="download-", dir=tmp_root))
    backend_port, port = free_ports(2)
    backend = Proc("backend", [*rota_argv(), "backend", "--port", str(backend_port)], tmp)
    os.environ["PYTHONPATH"] = str(ROOT / "src")
    backend.start()
    try:
        argv, env = rota_builder("uvloop")(tmp, port, [backend_port], cert)
        with started("rota-download", argv, env, tmp, port) as proc:
            before = tree_status_kib(proc.pid, "VmHWM")
            block = bytes(range(256)) * 256
            ctx = ssl.create_default_context(cafile=str(cert.cert))
            ctx.check_hostname = False
            t0 = time.monotonic()
            got = 0
            exact = True
            with (
                socket.create_connection((LOOPBACK, port), timeout=60) as raw,
                ctx.wrap_socket(raw) as s,
            ):
                s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: b\r\n\r\n" % BIG)
                buf = b""
                while b"\r\n\r\n" not in buf:
                    buf += s.recv(65536)
                _, _, data = buf.partition(b"\r\n\r\n")
                pattern = block * 17  # > 1 MiB: any chunk fits at any offset
                while True:
                    if data:
                        start = got % len(block)
                        exact = exact and pattern[start : start + len(data)] == data
                        got += len(data)
                    if got >= BIG:
                        break
                    data = s.recv(1 << 20)
                    if not data:
                        break
            seconds = time.monotonic() - t0
            after = tree_status_kib(proc.pid, "VmHWM")
    finally:
        backend.stop()
    return {
        "bytes": got,
        "byte_exact": exact and got == BIG,
        "seconds": round(seconds, 2),
        "mib_per_s": round(got / seconds / 2**20, 1),
        "peak_rss_before_mib": round(before / 1024, 1),
        "peak_rss_after_mib": round(after / 1024, 1),
    }


def median(runs: list[Run], key: str, workload: str, attr: str) -> float | None:
    values = [
        getattr(r, attr)
        for r in runs
        if r.contender == key and r.workload == workload and not r.failure
    ]
    return statistics.median(values) if values else None


def render(results: Results) -> str:
    s = results.settings
    lines = [
        "<!-- bench.tls: begin (python -m bench.tls rewrites this section) -->",
        "## HTTPS (issue 17)",
        "",
        f"`python -m bench.tls`, run {s['started']}: {s['rounds']} round(s) of {s['duration']} "
        f"per contender and workload, medians; wrk {s['wrk']}, one thread, to "
        "`https://127.0.0.1:PORT/` (no SNI), three nginx backends answering `200 ok` over "
        "plain HTTP. One ECDSA P-256 certificate for every contender; TLS 1.2+, Mozilla "
        "intermediate ciphers; one worker/thread each. CPU is the load balancer's own (user + "
        f"system) per request. Machine: {results.machine.get('CPU', '?')}, "
        f"{results.machine.get('nproc', '?')} cores, shared with other jobs (load average at "
        f"start {s['loadavg_start']}, at end {s['loadavg_end']}): figures are noisy, compare "
        "within one run.",
        "",
        "| contender | workload | req/s | p99 ms | CPU µs/req | errors |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for w in WORKLOADS:
        for key, (label, _) in CONTENDERS.items():
            if not any(r.contender == key and r.workload == w.key for r in results.runs):
                continue  # not run (--only, --workloads)
            rps = median(results.runs, key, w.key, "rps")
            if rps is None:
                fails = [
                    r.failure for r in results.runs if r.contender == key and r.workload == w.key
                ]
                lines.append(f"| {label} | {w.label} | failed: {fails[:1]} | | | |")
                continue
            p99 = median(results.runs, key, w.key, "p99_ms") or 0
            cpu = median(results.runs, key, w.key, "cpu_us") or 0
            errors = sum(
                r.errors for r in results.runs if r.contender == key and r.workload == w.key
            )
            lines.append(f"| {label} | {w.label} | {rps:,.0f} | {p99:.2f} | {cpu:.1f} | {errors} |")
    lines += ["", "Targets (issue 17), rota on uvloop against HAProxy in this run:", ""]
    lines += [f"- {t}" for t in targets(results)]
    d = results.download
    if d:
        lines += [
            "",
            f"1 GiB download through rota's TLS listener (from a `rota backend`): "
            f"{d['bytes']:,} bytes, byte-exact: {'yes' if d['byte_exact'] else 'NO'}, "
            f"{d['seconds']} s ({d['mib_per_s']} MiB/s); rota's peak RSS "
            f"{d['peak_rss_before_mib']} MiB before, {d['peak_rss_after_mib']} MiB after.",
        ]
    lines.append("<!-- bench.tls: end -->")
    return "\n".join(lines) + "\n"


def paired_ratios(results: Results, key: str, other: str, workload: str, attr: str) -> list[float]:
    """`key`'s figure over `other`'s, round by round: the rounds interleave the
    contenders, so pairing cancels most of the machine's drift between rounds."""
    ratios = []
    for round_no in sorted({r.round for r in results.runs}):
        mine = [
            getattr(r, attr)
            for r in results.runs
            if (r.contender, r.workload, r.round) == (key, workload, round_no) and not r.failure
        ]
        theirs = [
            getattr(r, attr)
            for r in results.runs
            if (r.contender, r.workload, r.round) == (other, workload, round_no) and not r.failure
        ]
        if mine and theirs and theirs[0]:
            ratios.append(mine[0] / theirs[0])
    return ratios


def targets(results: Results) -> list[str]:
    out = []
    r = median(results.runs, "rota", "new50", "rps")
    h = median(results.runs, "haproxy", "new50", "rps")
    if r and h:
        verdict = "PASS" if r >= HANDSHAKE_RATIO * h else "FAIL"
        out.append(
            f"handshakes/s at least {HANDSHAKE_RATIO}x HAProxy's: {r:,.0f} against {h:,.0f} "
            f"({r / h:.2f}x): **{verdict}**"
        )
    r = median(results.runs, "rota", "ka50", "cpu_us")
    h = median(results.runs, "haproxy", "ka50", "cpu_us")
    if r and h:
        verdict = "PASS" if r <= KA_CPU_RATIO * h else "FAIL"
        out.append(
            f"keep-alive CPU per request at most {KA_CPU_RATIO}x HAProxy's: {r:.1f} µs against "
            f"{h:.1f} µs ({r / h:.2f}x): **{verdict}**"
        )
    for key, other in (("rota", "haproxy"), ("rota-base", "haproxy"), ("rota", "rota-base")):
        paired = paired_ratios(results, key, other, "ka50", "cpu_us")
        if paired:
            out.append(
                f"{key} / {other} keep-alive CPU per request, round by round: "
                + ", ".join(f"{x:.2f}" for x in paired)
                + f" (median {statistics.median(paired):.2f}x)"
            )
    return out or ["not measured (a contender failed)"]


def write_section(doc: Path, section: str) -> None:
    text = doc.read_text() if doc.exists() else "# rota benchmarks\n"
    pattern = re.compile(r"<!-- bench.tls: begin.*?<!-- bench.tls: end -->\n", re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tls", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rounds", type=int)
    p.add_argument("--duration", type=float)
    p.add_argument("--only", help="comma-separated contenders")
    p.add_argument("--no-download", action="store_true")
    p.add_argument("--workloads", help="comma-separated workloads (new50,ka50)")
    p.add_argument(
        "--base",
        help="another rota source tree (its src/, built): contender rota-base, for a "
        "before/after of a change in the same run",
    )
    args = p.parse_args(argv)
    require_current_build("bench.tls", ROOT / "src", *([Path(args.base)] if args.base else []))
    rounds = args.rounds or (1 if args.quick else 3)
    duration = args.duration or (2.0 if args.quick else 10.0)
    keys = args.only.split(",") if args.only else list(CONTENDERS)
    if args.base:
        CONTENDERS["rota-base"] = (
            f"rota from {args.base} (uvloop)",
            rota_builder("uvloop", Path(args.base)),
        )
        keys = ["rota-base", *(k for k in keys if k != "rota-base")]
    workloads = [w for w in WORKLOADS if not args.workloads or w.key in args.workloads.split(",")]
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    ensure_tools()
    results = Results(machine=machine_info())
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    results.settings = {
        "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "rounds": str(rounds),
        "duration": f"{duration:g} s",
        "wrk": (wrk.stdout + wrk.stderr).split("\n")[0].split(" [")[0],
        "loadavg_start": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }
    root = Path(tempfile.mkdtemp(prefix="rota-bench-tls-"))
    lua = root / "done.lua"
    lua.write_text(DONE_LUA)
    backends, ports = nginx_backends(root, CONNS)
    try:
        cert = make_cert(root)
        backends.start()
        time.sleep(0.5)
        for round_no in range(rounds):
            order = keys if round_no % 2 == 0 else keys[::-1]
            for key in order:
                for w in workloads:
                    wait_for_quiet(2.0 if args.quick else 8.0)
                    run = run_one(key, w, round_no, root, ports, cert, duration, lua)
                    results.runs.append(run)
                    print(
                        f"bench.tls: round {round_no + 1}/{rounds} {key:13} {w.key:6} "
                        + (
                            f"FAILED {run.failure}"
                            if run.failure
                            else f"{run.rps:9,.0f} req/s  p99 {run.p99_ms:7.2f} ms  "
                            f"cpu {run.cpu_us:6.1f} us/req  errors {run.errors}"
                        ),
                        flush=True,
                    )
        if not args.no_download:
            results.download = download(root, cert)
            print(f"bench.tls: download {results.download}", flush=True)
    except KeyboardInterrupt:
        print("bench.tls: interrupted; every started process was stopped", file=sys.stderr)
        return 130
    finally:
        backends.stop()
    results.settings["loadavg_end"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
    (out_dir / f"tls-{stamp}{'-quick' if args.quick else ''}.json").write_text(
        json.dumps(asdict(results), indent=1)
    )
    section = render(results)
    if args.quick:
        quick = out_dir / "quick" / "tls.md"
        quick.parent.mkdir(parents=True, exist_ok=True)
        quick.write_text(section)
        print(f"bench.tls: wrote {quick}")
    else:
        write_section(ROOT / "docs" / "benchmarks.md", section)
        print("bench.tls: wrote the HTTPS section of docs/benchmarks.md")
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
