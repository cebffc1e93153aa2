"""`make bench`: rota against HAProxy, nginx and direct-to-backend, then docs/benchmarks.md.

    python -m bench.run            full run: 3 rounds of 10 s runs, 10,000 held connections
    python -m bench.run --quick    smoke test: 1 round of 2 s runs, 1,000 held connections;
                                   writes bench/results/quick/ instead of docs/

Every process started here is stopped by PID in a `finally`, also on Ctrl-C or SIGTERM. All
traffic goes to 127.0.0.1. Every run is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import functools
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

from bench.contenders import (
    Contender,
    all_contenders,
    max_conns,
    nginx_backends,
    rota_for_held,
    serving,
)
from bench.held import HeldResult, hold_connections
from bench.install import ensure_matplotlib, ensure_tools
from bench.machine import machine_info, require_current_build, tool_versions
from bench.procs import LOOPBACK, Proc, StartError, free_port, wait_ready
from bench.procstat import (
    cpu_seconds_between,
    machine_busy_seconds,
    tree_cpu_ticks,
    tree_status_kib,
)
from bench.report import Report, render_doc, results_table, targets_list
from bench.stats import RunRecord
from bench.wrkrun import (
    DONE_LUA,
    WORKLOADS,
    WRK_THREADS,
    WRK_TIMEOUT_S,
    Workload,
    WrkError,
    run_wrk,
    wrk_argv,
)

REPO = Path(__file__).resolve().parent.parent
ROTA_BIN = REPO / ".venv" / "bin" / "rota"
HELD_CONTENDERS = ("rota-1w", "haproxy", "nginx")
QUIET_CORES = 0.25  # machine busy below this (in cores) counts as quiet


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1 round of 2 s runs (smoke test)")
    p.add_argument("--rounds", type=int, help="rounds (default 3, quick 1)")
    p.add_argument("--duration", type=float, help="seconds per run (default 10, quick 2)")
    p.add_argument("--held", type=int, help="idle connections to hold (default 10000, quick 1000)")
    p.add_argument("--only", help="comma-separated contender keys to run (default: all)")
    p.add_argument("--out", type=Path, help="markdown output (default docs/benchmarks.md)")
    p.add_argument("--from-json", type=Path, help="re-render the docs from a saved results file")
    return p.parse_args(argv)


def _raise_nofile(wanted: int) -> int:
    """Raise this process's RLIMIT_NOFILE soft limit up to the hard limit; return the old soft
    limit, which the started load balancers get back (each is expected to raise its own)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard == resource.RLIM_INFINITY else min(hard, max(soft, wanted))
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return soft


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so the `finally` blocks stop every process we started.
    raise KeyboardInterrupt(f"signal {signum}")


class Bench:
    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.quick: bool = args.quick
        self.rounds: int = args.rounds or (1 if self.quick else 3)
        self.duration: float = args.duration or (2.0 if self.quick else 10.0)
        self.warmup: float = 1.0  # wrk takes whole seconds
        self.quiet_wait_s: float = 2.0 if self.quick else 8.0
        self.held_n: int = args.held or (1000 if self.quick else 10_000)
        self.only: set[str] = set(args.only.split(",")) if args.only else set()
        self.root = root
        self.lua = root / "done.lua"
        self.lua.write_text(DONE_LUA)
        self.backend_ports: list[int] = []
        self.backends_pid = 0
        self.child_nofile: int | None = None  # the open-files limit the bench started with
        self.configs_seen: set[str] = set()
        self.report = Report(contenders=[])
        self.conns = max_conns(resource.getrlimit(resource.RLIMIT_NOFILE)[1])

    def _dir(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.root))

    # -- set-up ---------------------------------------------------------------------------

    def probe_rota(self, contenders: list[Contender]) -> list[Contender]:
        """Contenders that can run; the others are recorded as not available, with why."""
        why_rota = ""
        help_text = ""
        try:
            done = subprocess.run(
                [str(ROTA_BIN), "lb", "--help"], capture_output=True, text=True, timeout=30
            )
            help_text = done.stdout + done.stderr
            if done.returncode != 0:
                last = (help_text.strip().splitlines() or ["no output"])[-1]
                why_rota = f"`rota lb --help` exited with {done.returncode} ({last})"
        except (OSError, subprocess.TimeoutExpired) as exc:
            why_rota = f"`rota lb --help` failed ({exc})"
        usable = []
        for c in contenders:
            if self.only and c.key not in self.only:
                continue
            if c.family == "rota" and why_rota:
                self.report.unavailable[c.key] = why_rota
            elif c.needs_flag and c.needs_flag not in help_text:
                self.report.unavailable[c.key] = f"`rota lb --help` does not mention {c.needs_flag}"
            else:
                usable.append(c)
        return usable

    def start_backends(self, stack: contextlib.ExitStack) -> None:
        nginx, self.backend_ports = nginx_backends(self._dir("backends"), self.conns)
        stack.enter_context(serving([nginx], self.backend_ports))
        self.backends_pid = nginx.pid
        conf = (nginx.workdir / "nginx.conf").read_text()
        self._record_config("backends: nginx.conf", conf, nginx.workdir, 0)
        self.report.commands.append("nginx -p DIR -c DIR/nginx.conf   # the three backends")

    # -- one run --------------------------------------------------------------------------

    @contextlib.contextmanager
    def started(self, contender: Contender) -> Iterator[tuple[int, Proc | None]]:
        """Start the contender fresh; yield (port, process); stop it by PID afterwards."""
        if contender.build is None:
            yield self.backend_ports[0], None
            return
        tmp = self._dir(contender.key)
        port = free_port()
        argv = contender.build(tmp, port, self.backend_ports)
        with Proc(contender.key, argv, tmp, self.child_nofile).start() as proc:
            wait_ready(proc, port)
            # Multi-process contenders may still be forking workers after the first answer.
            time.sleep(0.5)
            if contender.label not in self.configs_seen:
                self.configs_seen.add(contender.label)
                self._record_command(contender, argv, tmp, port)
            yield port, proc

    def wait_for_quiet(self) -> None:
        """Wait (bounded) until the rest of the machine is nearly idle before a run.

        Other jobs on a small shared machine skew every figure; waiting for a lull is cheap
        and the `other load` column still reports what happened during the run.
        """
        deadline = time.monotonic() + self.quiet_wait_s
        while True:
            busy0 = machine_busy_seconds()
            time.sleep(0.5)
            busy = (machine_busy_seconds() - busy0) / 0.5
            if busy < QUIET_CORES or time.monotonic() >= deadline:
                return

    def run_one(self, contender: Contender, workload: Workload, round_no: int) -> RunRecord:
        self.wait_for_quiet()
        try:
            with self.started(contender) as (port, proc):
                url = f"http://{LOOPBACK}:{port}/"
                run_wrk(wrk_argv(workload, self.warmup, url, self.lua), self.warmup)
                before = tree_cpu_ticks(proc.pid) if proc else {}
                machine0 = self._cpu_accounts()
                result = run_wrk(wrk_argv(workload, self.duration, url, self.lua), self.duration)
                machine1 = self._cpu_accounts()
                after = tree_cpu_ticks(proc.pid) if proc else {}
                if proc is not None and proc.exited() is not None:
                    raise StartError(f"exited during the run:\n{proc.log_tail()}")
                cpu = None
                rss = None
                lb_seconds = cpu_seconds_between(before, after)
                if proc is not None and result.requests:
                    cpu = lb_seconds * 1e6 / result.requests
                    rss = tree_status_kib(proc.pid, "VmHWM") / 1024
                other = machine1[0] - machine0[0] - (machine1[1] - machine0[1]) - lb_seconds
                other_cores = max(0.0, other) / result.duration_s if result.duration_s else None
        except (StartError, WrkError, OSError) as exc:
            return RunRecord(contender.key, workload.key, round_no, failure=_one_line(exc))
        return RunRecord(
            contender=contender.key,
            workload=workload.key,
            round=round_no,
            rps=result.rps,
            requests=result.requests,
            p50_ms=result.p50_ms,
            p99_ms=result.p99_ms,
            errors=result.errors,
            cpu_us_per_req=cpu,
            peak_rss_mb=rss,
            other_cores=other_cores,
        )

    def _cpu_accounts(self) -> tuple[float, float]:
        """(CPU seconds the whole machine was busy, CPU seconds of what we know: the backends,
        this process and its reaped children, i.e. wrk)."""
        ours = cpu_seconds_between({}, tree_cpu_ticks(self.backends_pid))
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            usage = resource.getrusage(who)
            ours += usage.ru_utime + usage.ru_stime
        return machine_busy_seconds(), ours

    def run_rounds(self, contenders: list[Contender]) -> None:
        for round_no in range(self.rounds):
            order = contenders if round_no % 2 == 0 else contenders[::-1]
            for contender in order:
                for workload in WORKLOADS:
                    if workload.close and contender.keep_alive_only:
                        continue
                    rec = self.run_one(contender, workload, round_no)
                    self.report.records.append(rec)
                    _progress(round_no, self.rounds, contender, workload, rec)

    # -- held connections -----------------------------------------------------------------

    def run_held(self, contenders: list[Contender]) -> None:
        by_key = {c.key: c for c in contenders}
        for key in HELD_CONTENDERS:
            contender = by_key.get(key)
            if contender is None:
                continue
            wanted = self.held_n
            if key == "rota-1w":
                contender = rota_for_held(str(ROTA_BIN), self.held_n + 100)
            else:
                # HAProxy and nginx are configured for self.conns client connections, bounded by
                # the file-descriptor hard limit; they are references here, not under test.
                wanted = min(self.held_n, self.conns - 100)
            print(f"bench: holding {wanted:,} idle connections to {key}", flush=True)
            try:
                with self.started(contender) as (port, proc):
                    if proc is None:
                        continue
                    rss = functools.partial(tree_status_kib, proc.pid, "VmRSS")
                    result = asyncio.run(hold_connections(key, port, wanted, rss))
                    log = proc.log_tail(200)
            except (StartError, OSError, TimeoutError) as exc:
                result = HeldResult(key, wanted, 0, note=_one_line(exc))
                log = ""
            if "Too many open files" in log or "EMFILE" in log:
                note = (result.note + "; EMFILE in its log").strip("; ")
                result = dataclasses.replace(result, note=note)
            self.report.held.append(result)
            print(f"bench:   held {result.held:,}, {result.kib_per_conn} KiB/conn", flush=True)

    # -- records for the doc --------------------------------------------------------------

    def _anonymise(self, text: str, tmp: Path, port: int) -> str:
        text = text.replace(str(tmp), "DIR").replace(f"{REPO}/", "")
        for i, p in enumerate(self.backend_ports, 1):
            text = text.replace(str(p), f"B{i}")
        return text.replace(str(port), "PORT") if port else text

    def _record_config(self, title: str, text: str, tmp: Path, port: int) -> None:
        self.report.configs[title] = self._anonymise(text, tmp, port)

    def _record_command(self, contender: Contender, argv: list[str], tmp: Path, port: int) -> None:
        line = shlex.join(argv).replace(str(ROTA_BIN), ".venv/bin/rota")
        self.report.commands.append(f"{self._anonymise(line, tmp, port)}   # {contender.label}")
        for path in sorted(tmp.iterdir()):
            if path.suffix in (".conf", ".cfg", ".json"):
                title = f"{contender.label}: {path.name}"
                self._record_config(title, path.read_text(), tmp, port)


def _loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def _progress(
    round_no: int, rounds: int, contender: Contender, workload: Workload, rec: RunRecord
) -> None:
    head = f"bench: round {round_no + 1}/{rounds} {contender.key:12} {workload.key:8}"
    if rec.failure:
        print(f"{head} FAILED {rec.failure}", flush=True)
        return
    cpu = f"{rec.cpu_us_per_req:7.1f} us/req" if rec.cpu_us_per_req is not None else "      -"
    errs = sum(rec.errors.values())
    print(
        f"{head} {rec.rps:9,.0f} req/s  p50 {rec.p50_ms:6.2f} ms  p99 {rec.p99_ms:7.2f} ms  "
        f"errors {errs}  cpu {cpu}  other load {rec.other_cores or 0:.2f} cores",
        flush=True,
    )


def write_outputs(report: Report, out: Path, title: str) -> None:
    from bench.chart import write_chart

    png = out.with_suffix(".png")
    chart: str | None = png.name
    try:
        write_chart(report, png)
    except Exception as exc:  # the table matters more than the picture
        print(f"bench: chart not written: {_one_line(exc)}", file=sys.stderr)
        chart = None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_doc(report, chart, title))
    print(f"bench: wrote {out}" + (f" and {png}" if chart else ""), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out or (
        REPO / "bench" / "results" / "quick" / "benchmarks.md"
        if args.quick
        else REPO / "docs" / "benchmarks.md"
    )
    title = "rota benchmarks" + (" (quick smoke run: not for comparison)" if args.quick else "")
    if args.from_json:
        report = Report.from_json(args.from_json.read_text())
        write_outputs(report, out, title)
        return 0

    require_current_build("bench.run")

    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    ensure_tools()
    ensure_matplotlib()
    signal.signal(signal.SIGTERM, _on_sigterm)
    wanted_fds = (args.held or (1000 if args.quick else 10_000)) + 1000
    child_nofile = _raise_nofile(wanted_fds)

    started = datetime.datetime.now(datetime.UTC)
    root = Path(tempfile.mkdtemp(prefix="rota-bench-"))
    bench = Bench(args, root)
    bench.child_nofile = child_nofile
    report = bench.report
    report.machine = machine_info()
    report.versions = tool_versions(REPO, ROTA_BIN)
    compiled = "compiled" in report.versions["rota build"]
    contenders = all_contenders(str(ROTA_BIN), bench.conns, compiled)
    report.contenders = [(c.key, c.label, c.mode, c.family) for c in contenders]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted_fds:
        bench.held_n = max(100, soft - 1000)
        report.notes.append(f"RLIMIT_NOFILE hard limit {hard}: holding {bench.held_n} only.")
    report.notes.append(
        f"Open-files limit: the bench raises its own to {soft} (hard limit {hard}); every "
        f"started process gets the starting soft limit ({child_nofile}) and raises its own."
    )
    report.settings = {
        "rounds": str(bench.rounds),
        "duration": f"{bench.duration:g} s",
        "warmup": f"{bench.warmup:g} s",
        "wrk_threads": str(WRK_THREADS),
        "wrk_timeout": f"{WRK_TIMEOUT_S}s",
        "held": f"{bench.held_n:,}",
        "proxy_maxconn": f"{bench.conns:,}",
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg_start": _loadavg(),
        "quiet_wait": f"{bench.quiet_wait_s:g} s",
    }
    for w in WORKLOADS:
        line = shlex.join(wrk_argv(w, bench.duration, f"http://{LOOPBACK}:PORT/", Path("done.lua")))
        report.commands.append(f"{line}   # {w.label}")
    try:
        usable = bench.probe_rota(contenders)
        with contextlib.ExitStack() as stack:
            bench.start_backends(stack)
            bench.run_rounds(usable)
            bench.run_held(usable)
    except KeyboardInterrupt:
        print("bench: interrupted; every started process was stopped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(root, ignore_errors=True)
    elapsed = datetime.datetime.now(datetime.UTC) - started
    report.settings["elapsed"] = f"{elapsed.total_seconds() / 60:.1f} min"
    report.settings["loadavg_end"] = _loadavg()

    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    saved = results / f"{started.strftime('%Y%m%dT%H%M%S')}{'-quick' if args.quick else ''}.json"
    saved.write_text(report.to_json())
    print(f"bench: raw results in {saved}")
    write_outputs(report, out, title)
    print()
    print(results_table(report))
    print()
    print(targets_list(report.targets()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
