"""Big bodies: 1 GiB up and down, and responses of 1 KiB, 64 KiB and 1 MiB under load.

    python -m bench.bulk            3 rounds, written to docs/benchmarks-bodies.md
    python -m bench.bulk --quick    1 round of 256 MiB transfers and 2 s wrk runs, written
                                    to bench/results/quick/bodies.md
    python -m bench.bulk --rounds 2 --only rota,haproxy

One `rota backend` on 127.0.0.1 serves `/bytes/N` (N bytes, Content-Length, or chunked with
`?chunked=1`) and `/sha256` (hashes an upload, answers its digest and length). In front of
it, one at a time: rota (1 worker, compiled if built), HAProxy (1 thread) and nginx (1
worker, request and response buffering off so that it streams as the others do).

- Transfers: a 1 GiB upload with Content-Length, the same chunked (1 MiB chunks), and a 1 GiB
  download, each on one connection by a client of ours (sendall / recv_into 1 MiB), checked
  byte-exact (the backend's digest of the upload; the download's byte count). Reported:
  seconds, MiB/s, and the proxy's CPU seconds per GiB (user + system, from /proc).
- Sizes: wrk, 50 keep-alive connections, `/bytes/1024`, `/bytes/65536`, `/bytes/1048576`:
  requests/s and MiB/s, and the proxy's CPU seconds per GiB delivered.

Medians of the rounds. Each contender runs alone, but the machine may be shared: compare
the contenders within one run, never across runs. Every process is started here and
stopped by PID in a `finally`; every transfer and wrk run is bounded in time.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.contenders import _haproxy, _nginx_main, _rota, max_conns, nginx_argv
from bench.machine import require_current_build
from bench.procs import LOOPBACK, Proc, free_ports, wait_ready
from bench.procstat import cpu_seconds_between, tree_cpu_ticks

GIB = 1 << 30
BLOCK = 1 << 20
SIZES = (1024, 64 * 1024, 1 << 20)
TRANSFER_TIMEOUT_S = 120.0
ROOT = Path(__file__).resolve().parents[1]


def nginx_streaming_conf(tmp: Path, port: int, backends: Sequence[int], conns: int) -> str:
    servers = "\n".join(f"        server {LOOPBACK}:{p};" for p in backends)
    body = f"""    upstream pool {{
{servers}
        keepalive 64;
        keepalive_requests 1000000;
    }}
    server {{
        listen {LOOPBACK}:{port};
        keepalive_requests 1000000;
        client_max_body_size 0;
        location / {{
            proxy_pass http://pool;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_request_buffering off;
            proxy_buffering off;
        }}
    }}
"""
    return _nginx_main(tmp, conns, body)


def _nginx(conns: int) -> Callable[[Path, int, Sequence[int]], list[str]]:
    def build(tmp: Path, port: int, backends: Sequence[int]) -> list[str]:
        return nginx_argv(tmp, nginx_streaming_conf(tmp, port, backends, conns))

    return build


# -- one transfer --------------------------------------------------------------------------


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError(f"closed before a response head: {data[:200]!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise RuntimeError(f"no Content-Length: {head[:300]!r}")


def upload(port: int, total: int, chunked: bool) -> None:
    """POST `total` bytes to /sha256 and check the backend's digest and length."""
    block = bytes(range(256)) * (BLOCK // 256)
    digest = hashlib.sha256()
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % total
    with socket.create_connection((LOOPBACK, port), timeout=TRANSFER_TIMEOUT_S) as s:
        s.sendall(b"POST /sha256 HTTP/1.1\r\nHost: bench\r\n%s\r\n\r\n" % framing)
        left = total
        size_line = b"%x\r\n" % BLOCK
        while left > 0:
            piece = block if left >= BLOCK else block[:left]
            digest.update(piece)
            if chunked:
                s.sendall(size_line if len(piece) == BLOCK else b"%x\r\n" % len(piece))
                s.sendall(piece)
                s.sendall(b"\r\n")
            else:
                s.sendall(piece)
            left -= len(piece)
        if chunked:
            s.sendall(b"0\r\n\r\n")
        head, rest = _read_head(s)
        length = _content_length(head)
        while len(rest) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
    expected = f"{digest.hexdigest()} {total}".encode()
    if not head.startswith(b"HTTP/1.1 200") or rest.strip() != expected:
        raise RuntimeError(f"upload not byte-exact: {head[:40]!r} {rest[:100]!r}")


def download(port: int, total: int) -> None:
    """GET /bytes/total and count what arrives."""
    with socket.create_connection((LOOPBACK, port), timeout=TRANSFER_TIMEOUT_S) as s:
        s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: bench\r\n\r\n" % total)
        head, rest = _read_head(s)
        length = _content_length(head)
        got = len(rest)
        buf = bytearray(BLOCK)
        while got < length:
            n = s.recv_into(buf)
            if not n:
                break
            got += n
    if got != total or length != total:
        raise RuntimeError(f"download short: {got} of {total}")


@dataclass
class Transfer:
    seconds: list[float] = field(default_factory=list)
    cpu_per_gib: list[float] = field(default_factory=list)


def timed(pid: int, total: int, run: Callable[[], None], into: Transfer) -> None:
    before = tree_cpu_ticks(pid)
    start = time.monotonic()
    run()
    seconds = time.monotonic() - start
    into.seconds.append(seconds)
    into.cpu_per_gib.append(cpu_seconds_between(before, tree_cpu_ticks(pid)) * GIB / total)


# -- wrk at keep-alive 50 ------------------------------------------------------------------


@dataclass
class Sized:
    rps: list[float] = field(default_factory=list)
    cpu_per_gib: list[float] = field(default_factory=list)


def wrk_rps(wrk: str, port: int, size: int, seconds: int) -> float:
    argv = [wrk, "-t", "2", "-c", "50", "-d", f"{seconds}s", "--timeout", "10s"]
    argv.append(f"http://{LOOPBACK}:{port}/bytes/{size}")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=True)
    for line in done.stdout.splitlines():
        if line.startswith("Requests/sec:"):
            if "Non-2xx" in done.stdout or "Socket errors" in done.stdout:
                raise RuntimeError(f"wrk saw errors:\n{done.stdout}")
            return float(line.split()[1])
    raise RuntimeError(f"no Requests/sec in wrk output:\n{done.stdout}")


# -- the run -------------------------------------------------------------------------------


@dataclass
class Result:
    transfers: dict[str, Transfer] = field(default_factory=dict)
    sizes: dict[int, Sized] = field(default_factory=dict)


TRANSFERS = ("upload, Content-Length", "upload, chunked", "download")


def measure(
    key: str, build: Callable[[Path, int, Sequence[int]], list[str]], backend: int, args: Args
) -> Result:
    result = Result({name: Transfer() for name in TRANSFERS}, {s: Sized() for s in SIZES})
    with tempfile.TemporaryDirectory(prefix=f"bulk-{key}-") as tmp:
        port = free_ports(1)[0]
        proc = Proc(key, build(Path(tmp), port, [backend]), Path(tmp))
        try:
            proc.start()
            wait_ready(proc, port)
            for _ in range(args.rounds):
                t = result.transfers
                total = args.total
                runs = (
                    functools.partial(upload, port, total, False),
                    functools.partial(upload, port, total, True),
                    functools.partial(download, port, total),
                )
                for name, run in zip(TRANSFERS, runs, strict=True):
                    timed(proc.pid, total, run, t[name])
                for size in SIZES:
                    before = tree_cpu_ticks(proc.pid)
                    rps = wrk_rps(args.wrk, port, size, args.seconds)
                    cpu = cpu_seconds_between(before, tree_cpu_ticks(proc.pid))
                    result.sizes[size].rps.append(rps)
                    result.sizes[size].cpu_per_gib.append(cpu * GIB / (rps * args.seconds * size))
        finally:
            proc.stop()
    return result


@dataclass
class Args:
    rounds: int
    total: int
    seconds: int
    wrk: str


def report(results: dict[str, Result], args: Args) -> str:
    med = statistics.median
    names = list(results)
    lines = [
        f"Transfers of {args.total / 2**20:.0f} MiB on one connection, medians of "
        f"{args.rounds} round(s):",
        "",
        "| transfer | "
        + " | ".join(f"{n}: s, MiB/s, CPU s/GiB" for n in names)
        + " | rota / HAProxy |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for name in TRANSFERS:
        cells = []
        for n in names:
            t = results[n].transfers[name]
            s = med(t.seconds)
            cells.append(f"{s:.2f}, {args.total / 2**20 / s:.0f}, {med(t.cpu_per_gib):.2f}")
        ratio = _ratio({n: med(r.transfers[name].seconds) for n, r in results.items()})
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ratio} |")
    lines += [
        "",
        f"Responses by size, wrk -c50 keep-alive, {args.seconds} s, medians:",
        "",
        "| size | "
        + " | ".join(f"{n}: req/s, MiB/s, CPU s/GiB" for n in names)
        + " | rota / HAProxy |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for size in SIZES:
        cells = []
        for n in names:
            sz = results[n].sizes[size]
            rps = med(sz.rps)
            cells.append(f"{rps:.0f}, {rps * size / 2**20:.0f}, {med(sz.cpu_per_gib):.2f}")
        ratio = _ratio({n: 1 / med(r.sizes[size].rps) for n, r in results.items()})
        lines.append(f"| {size // 1024} KiB | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(lines)


def _ratio(time_of: dict[str, float]) -> str:
    """rota's time (per transfer, or per request) over HAProxy's."""
    if "rota" not in time_of or "haproxy" not in time_of:
        return "-"
    return f"{time_of['rota'] / time_of['haproxy']:.2f}x time"


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", default="", help="comma-separated contenders: rota,haproxy,nginx")
    p.add_argument("--rounds", type=int, default=0, help="rounds (default 3, --quick 1)")
    opts = p.parse_args(argv)
    require_current_build("bench.bulk")
    wrk = shutil.which("wrk") or "wrk"
    args = Args(1, 256 << 20, 2, wrk) if opts.quick else Args(3, GIB, 5, wrk)
    if opts.rounds > 0:
        args.rounds = opts.rounds
    rota_bin = str(Path(sys.executable).with_name("rota"))
    conns = max_conns(4096)
    contenders = {
        "rota": _rota(rota_bin, []),
        "haproxy": _haproxy("http", conns),
        "nginx": _nginx(conns),
    }
    if opts.only:
        contenders = {k: v for k, v in contenders.items() if k in opts.only.split(",")}
    backend_port = free_ports(1)[0]
    with tempfile.TemporaryDirectory(prefix="bulk-backend-") as tmp:
        backend = Proc(
            "backend",
            [rota_bin, "backend", "--host", LOOPBACK, "--port", str(backend_port)],
            Path(tmp),
        )
        try:
            backend.start()
            wait_ready(backend, backend_port)
            results = {k: measure(k, b, backend_port, args) for k, b in contenders.items()}
        finally:
            backend.stop()
    text = report(results, args)
    print(text)
    out = ROOT / ("bench/results/quick/bodies.md" if opts.quick else "docs/benchmarks-bodies.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = __doc__.split("\n\n", 2)[2].split("Every process")[0].strip()
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    out.write_text(
        f"# Big bodies: rota, HAProxy, nginx\n\nWritten by `python -m bench.bulk"
        f"{' ' + ' '.join(argv or sys.argv[1:]) if (argv or sys.argv[1:]) else ''}` "
        f"(load average at the end: {load}).\n\n"
        f"{doc}\n\n{text}\n"
    )
    print(f"bench: wrote {out}")


if __name__ == "__main__":
    main()
