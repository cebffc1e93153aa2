"""The contenders: how each is configured and started, all against the same three backends.

Every generator writes its config into the given temp dir and returns the argv to run. The
settings follow the issue: one worker/thread for HAProxy and nginx, keep-alive to backends,
no access logs, no (or no frequent) health checks. The backends themselves are here too
(`nginx_backends`, `rota_backends`, started and awaited by `serving`), so that every bench
sets them up the one way.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.procs import LOOPBACK, Proc, free_ports, wait_ready

BACKENDS = 3


def max_conns(nofile_hard: int) -> int:
    """Client connections HAProxy and nginx are configured for: enough for the held
    connections step (10,000 idle clients), within the file descriptors the machine allows
    (a proxied connection takes two: client and backend)."""
    return max(1024, min(16384, (nofile_hard - 200) // 2))


# Argv builder: (temp dir, listen port, backend ports) -> argv.
Builder = Callable[[Path, int, Sequence[int]], list[str]]


@dataclass(frozen=True)
class Contender:
    key: str
    label: str
    mode: str  # "http" or "tcp"
    family: str  # "direct", "rota", "haproxy", "nginx"
    build: Builder | None  # None: no process, traffic goes straight to backend 1
    needs_flag: str = ""  # a rota flag that `rota lb --help` must mention
    keep_alive_only: bool = False  # skip the one-request-per-connection workload


def nginx_backend_conf(
    tmp: Path, ports: Sequence[int], conns: int, status_port: int | None = None
) -> str:
    """One nginx, one worker, answering `200 ok` on each port (the shared fast backends);
    with `status_port`, stub_status there (connections accepted, for bench.reuse)."""
    servers = "\n".join(
        f"    server {{ listen {LOOPBACK}:{p}; location / {{ return 200 'ok\\n'; }} }}"
        for p in ports
    )
    if status_port is not None:
        status = f"listen {LOOPBACK}:{status_port}; location / {{ stub_status; }}"
        servers += f"\n    server {{ {status} }}"
    return _nginx_main(
        tmp,
        conns,
        f"""    default_type text/plain;
    keepalive_requests 1000000;
{servers}
""",
    )


def nginx_backends(root: Path, conns: int) -> tuple[Proc, list[int]]:
    """The three nginx backends every contender proxies to (one nginx, one worker, plain
    HTTP, keep-alive, `200 ok` on each port), configured in `root/backends` for `conns`
    connections: the process, not started yet (`serving` starts it), and its ports."""
    backend_dir = root / "backends"
    backend_dir.mkdir()
    ports = free_ports(BACKENDS)
    conf = nginx_backend_conf(backend_dir, ports, conns)
    return Proc("backends", nginx_argv(backend_dir, conf), backend_dir), ports


def rota_backends(root: Path, rota: Sequence[str]) -> tuple[list[Proc], list[int]]:
    """Three `rota backend` processes (`rota`: the argv that runs rota), one port each, their
    logs in `root`: the processes, not started yet (`serving` starts them), and the ports.
    The Python backend a user's `make run` starts, for the benches measured against it."""
    ports = free_ports(BACKENDS)
    procs = [
        Proc(f"backend{i}", [*rota, "backend", "--host", LOOPBACK, "--port", str(port)], root)
        for i, port in enumerate(ports)
    ]
    return procs, ports


@contextlib.contextmanager
def serving(procs: Sequence[Proc], ports: Sequence[int]) -> Iterator[list[int]]:
    """Start `procs` and wait until every port answers `200` (port i is served by process i,
    or by the only process), yielding the ports; every process is stopped by PID on the way
    out, whatever happened (one that exits or never answers is an error with its log)."""
    owners = list(procs) if len(procs) > 1 else [procs[0]] * len(ports)
    with contextlib.ExitStack() as stack:
        for proc in procs:
            stack.enter_context(proc.start())
        for owner, port in zip(owners, ports, strict=True):
            wait_ready(owner, port)
        yield list(ports)


def _nginx_main(tmp: Path, conns: int, http_body: str) -> str:
    # worker_processes 1 and every path inside the temp dir, so nothing touches /var or /etc.
    return f"""worker_processes 1;
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
worker_rlimit_nofile {conns * 2 + 100};
events {{ worker_connections {conns}; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{http_body}}}
"""


def nginx_argv(tmp: Path, conf: str) -> list[str]:
    path = tmp / "nginx.conf"
    path.write_text(conf)
    return ["nginx", "-p", str(tmp), "-c", str(path)]


def _nginx_proxy(conns: int) -> Builder:
    def build(tmp: Path, port: int, backends: Sequence[int]) -> list[str]:
        return nginx_argv(tmp, nginx_proxy_conf(tmp, port, backends, conns))

    return build


def nginx_proxy_conf(tmp: Path, port: int, backends: Sequence[int], conns: int) -> str:
    servers = "\n".join(f"        server {LOOPBACK}:{p};" for p in backends)
    body = f"""    upstream pool {{
{servers}
        keepalive 64;
        keepalive_requests 1000000;
    }}
    server {{
        listen {LOOPBACK}:{port};
        keepalive_requests 1000000;
        location / {{
            proxy_pass http://pool;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
"""
    return _nginx_main(tmp, conns, body)


def haproxy_conf(mode: str, port: int, backends: Sequence[int], conns: int) -> str:
    # No `check` on the servers: health checks off, as the issue allows.
    servers = "\n".join(f"    server s{i} {LOOPBACK}:{p}" for i, p in enumerate(backends, 1))
    reuse = "    http-reuse always\n" if mode == "http" else ""
    return f"""global
    nbthread 1
    maxconn {conns}
defaults
    mode {mode}
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend fe
    bind {LOOPBACK}:{port}
    maxconn {conns}
    default_backend be
backend be
    balance roundrobin
{reuse}{servers}
"""


def _haproxy(mode: str, conns: int) -> Builder:
    def build(tmp: Path, port: int, backends: Sequence[int]) -> list[str]:
        path = tmp / "haproxy.cfg"
        path.write_text(haproxy_conf(mode, port, backends, conns))
        # -db: stay in the foreground, so the PID we hold is the one that serves.
        return ["haproxy", "-db", "-f", str(path)]

    return build


def rota_config(backends: Sequence[int], limits: Mapping[str, int] | None = None) -> str:
    """The seed's JSON config format, plus a `limits` section when given."""
    servers = [{"id": i, "host": LOOPBACK, "port": p} for i, p in enumerate(backends, 1)]
    data: dict[str, object] = {"server_list": servers}
    if limits:
        data["limits"] = dict(limits)
    return json.dumps(data, indent=2) + "\n"


def _rota(
    rota_bin: str,
    extra: Sequence[str],
    limits: Mapping[str, int] | None = None,
    pure: bool = False,
) -> Builder:
    def build(tmp: Path, port: int, backends: Sequence[int]) -> list[str]:
        path = tmp / "rota.json"
        path.write_text(rota_config(backends, limits))
        argv = [rota_bin, "lb", "--host", LOOPBACK, "--port", str(port), "--config", str(path)]
        # `env` execs rota in place: the PID stays the one measured and stopped.
        return (["env", "ROTA_PURE_PYTHON=1"] if pure else []) + argv + list(extra)

    return build


def _floor(tmp: Path, port: int, backends: Sequence[int]) -> list[str]:
    script = Path(__file__).with_name("floor.py")
    ports = ",".join(str(p) for p in backends)
    return [sys.executable, str(script), "--port", str(port), "--backends", ports]


# Not a load balancer: the least an HTTP proxy on CPython + uvloop + httptools does per
# request (bench/floor.py), run beside the others to show what the stack itself costs.
# Keep-alive only: it pools nothing, so one request per connection would measure that.
FLOOR = Contender(
    "floor",
    "Python floor (uvloop + httptools, no proxy logic)",
    "http",
    "floor",
    _floor,
    keep_alive_only=True,
)


def all_contenders(rota_bin: str, conns: int, compiled: bool) -> list[Contender]:
    """Every contender; with a compiled rota, also rota as pure Python (what a machine
    without a C compiler runs)."""
    pure = Contender(
        "rota-1w-py", "rota, 1 worker, pure Python", "http", "rota", _rota(rota_bin, [], pure=True)
    )
    return [
        Contender("direct", "direct to backend", "http", "direct", None),
        Contender("rota-1w", "rota, 1 worker", "http", "rota", _rota(rota_bin, [])),
        *([pure] if compiled else []),
        Contender(
            "rota-auto",
            "rota, --workers auto",
            "http",
            "rota",
            _rota(rota_bin, ["--workers", "auto"]),
            needs_flag="--workers",
        ),
        Contender("haproxy", "HAProxy", "http", "haproxy", _haproxy("http", conns)),
        Contender("nginx", "nginx", "http", "nginx", _nginx_proxy(conns)),
        FLOOR,
        Contender("haproxy-tcp", "HAProxy mode tcp", "tcp", "haproxy", _haproxy("tcp", conns)),
        Contender(
            "rota-tcp",
            "rota --mode tcp",
            "tcp",
            "rota",
            _rota(rota_bin, ["--mode", "tcp"]),
            needs_flag="--mode",
        ),
    ]


def rota_for_held(rota_bin: str, max_connections: int) -> Contender:
    """rota, 1 worker, with its per-worker connection limit (10,000 by default) raised above
    the held connections, so the fresh client measured beside them is not refused."""
    limits = {"max_connections": max_connections}
    label = "rota, 1 worker (held connections step)"
    return Contender("rota-1w", label, "http", "rota", _rota(rota_bin, [], limits))
