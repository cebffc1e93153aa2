"""The contenders of `python -m bench.tls`: one ECDSA P-256 certificate, and how rota,
HAProxy and nginx are configured to terminate TLS with it in front of the same backends."""

from __future__ import annotations

import resource
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.contenders import max_conns, nginx_argv, nginx_backend_conf
from bench.procs import LOOPBACK

ROOT = Path(__file__).resolve().parents[1]
# Client connections each contender is configured for, within the file descriptors allowed.
CONNS = max_conns(resource.getrlimit(resource.RLIMIT_NOFILE)[1])
# Mozilla intermediate (the list rota.tls.server uses), for HAProxy and nginx alike.
CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)


def rota_argv() -> list[str]:
    venv = ROOT / ".venv" / "bin" / "rota"
    return [str(venv)] if venv.exists() else [sys.executable, "-m", "rota"]


@dataclass(frozen=True)
class Cert:
    cert: Path
    key: Path
    combined: Path  # cert + key, for HAProxy


def make_cert(tmp: Path) -> Cert:
    cert, key, combined = tmp / "cert.pem", tmp / "key.pem", tmp / "combined.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=bench.local",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-addext",
            "subjectAltName=DNS:bench.local,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    combined.write_bytes(cert.read_bytes() + key.read_bytes())
    return Cert(cert, key, combined)


Builder = Callable[[Path, int, Sequence[int], Cert], tuple[list[str], dict[str, str]]]


def rota_builder(loop: str, src: Path = ROOT / "src") -> Builder:
    """rota on `loop`, run from the source tree `src` (another tree's, for a before/after
    in one run: `bench.tls --base DIR`)."""

    def build(
        tmp: Path, port: int, backends: Sequence[int], cert: Cert
    ) -> tuple[list[str], dict[str, str]]:
        servers = ", ".join(f'{{ host = "{LOOPBACK}", port = {p} }}' for p in backends)
        (tmp / "rota.toml").write_text(
            f"""[listeners.web]
bind = "{LOOPBACK}:{port}"
tls = {{ certificates = [{{ cert = "{cert.cert}", key = "{cert.key}" }}] }}
limits = {{ max_connections = {CONNS} }}
[[listeners.web.routes]]
pool = "nginx"
[pools.nginx]
servers = [{servers}]
health_check = {{ type = "tcp", interval = 30 }}
"""
        )
        env = {"ROTA_LOOP": loop, "PYTHONPATH": str(src)}
        return [*rota_argv(), "lb", "--config", str(tmp / "rota.toml")], env

    return build


def _haproxy(
    tmp: Path, port: int, backends: Sequence[int], cert: Cert
) -> tuple[list[str], dict[str, str]]:
    servers = "\n".join(f"    server s{i} {LOOPBACK}:{p}" for i, p in enumerate(backends, 1))
    (tmp / "haproxy.cfg").write_text(
        f"""global
    nbthread 1
    maxconn {CONNS}
    ssl-default-bind-ciphers {CIPHERS}
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend fe
    bind {LOOPBACK}:{port} ssl crt {cert.combined} alpn http/1.1
    maxconn {CONNS}
    default_backend be
backend be
    balance roundrobin
    http-reuse always
{servers}
"""
    )
    return ["haproxy", "-db", "-f", str(tmp / "haproxy.cfg")], {}


def _nginx(
    tmp: Path, port: int, backends: Sequence[int], cert: Cert
) -> tuple[list[str], dict[str, str]]:
    servers = "\n".join(f"        server {LOOPBACK}:{p};" for p in backends)
    conf = nginx_backend_conf(tmp, [], CONNS).replace(
        "    keepalive_requests 1000000;\n",
        f"""    keepalive_requests 1000000;
    upstream pool {{
{servers}
        keepalive 64;
    }}
    server {{
        listen {LOOPBACK}:{port} ssl;
        ssl_certificate {cert.cert};
        ssl_certificate_key {cert.key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers {CIPHERS};
        ssl_session_cache shared:SSL:10m;
        location / {{
            proxy_pass http://pool;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
""",
    )
    return nginx_argv(tmp, conf), {}


CONTENDERS: dict[str, tuple[str, Builder]] = {
    "rota": ("rota, 1 worker (uvloop)", rota_builder("uvloop")),
    "rota-asyncio": ("rota, 1 worker (asyncio loop)", rota_builder("asyncio")),
    "haproxy": ("HAProxy, 1 thread", _haproxy),
    "nginx": ("nginx, 1 worker", _nginx),
}
