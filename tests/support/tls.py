"""Certificates made at test time (trustme) and clients that show what a TLS listener did:
which certificate it sent, which version and ALPN it chose, whether a session resumed.

Nothing here is rota's code: the client side is Python's `ssl`, curl and `openssl s_client`.
"""

from __future__ import annotations

import json
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support.tcp_procs import Proc, Procs


@dataclass
class Issued:
    cert: Path
    key: Path
    serial: int


def issue(
    ca: trustme.CA, where: Path, stem: str, *names: str, ecdsa: bool = False, **kw: object
) -> Issued:
    kind = trustme.KeyType.ECDSA if ecdsa else trustme.KeyType.RSA
    leaf = ca.issue_cert(*names, key_type=kind, **kw)  # type: ignore[arg-type]
    cert, key = where / f"{stem}.pem", where / f"{stem}.key"
    leaf.cert_chain_pems[0].write_to_path(cert)
    leaf.private_key_pem.write_to_path(key)
    parsed = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    return Issued(cert, key, parsed.serial_number)


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@dataclass
class Handshake:
    names: list[str]  # the DNS names of the certificate the server sent
    serial: int
    key_type: str  # "ECDSA" or "RSA"
    version: str
    alpn: str | None
    reused: bool


def shake(
    port: int,
    ctx: ssl.SSLContext,
    sni: str | None,
    session: ssl.SSLSession | None = None,
    request: bytes | None = None,
) -> tuple[Handshake, bytes, ssl.SSLSession | None]:
    """One TLS connection to 127.0.0.1:port: what the server chose, the answer to
    `request` (read to the end of its Content-Length), and the session to resume."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=sni, session=session) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        cert = x509.load_der_x509_certificate(der)
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            names = san.value.get_values_for_type(x509.DNSName)
        except x509.ExtensionNotFound:
            names = []
        key = cert.public_key()
        kind = "ECDSA" if isinstance(key, ec.EllipticCurvePublicKey) else "RSA"
        assert isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
        answer = b""
        if request is not None:
            tls.sendall(request)
            answer = read_response(tls)
        found = Handshake(
            names,
            cert.serial_number,
            kind,
            tls.version() or "",
            tls.selected_alpn_protocol(),
            tls.session_reused,
        )
        return found, answer, tls.session


def read_response(sock: socket.socket) -> bytes:
    """One HTTP/1.1 response with a Content-Length, head and body."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return buf
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def get(host: str) -> bytes:
    return f"GET /request HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def start_rota(procs: Procs, config: Path, text: str) -> Proc:
    """`rota lb` on a TOML config (its listeners bind port 0: the ready line tells)."""
    config.write_text(text)
    return procs.start("-m", "rota", "lb", "--config", str(config))


def one_pool_site(
    certificates: list[Issued], backend: int, head: str = "", listener: str = ""
) -> str:
    """A TOML config: listener `web` terminating TLS with `certificates`, routing to pool
    `one` (the backend on `backend`, TCP-checked). `head` goes before the listener (an
    `[admin]` section), `listener` into it (`timeouts = ...`)."""
    return f"""{head}
[listeners.web]
bind = "127.0.0.1:0"
{listener}
tls = {{ certificates = {toml_list(certificates)} }}
[[listeners.web.routes]]
pool = "one"
[pools.one]
servers = [{{ host = "127.0.0.1", port = {backend} }}]
health_check = {{ type = "tcp", interval = 0.5 }}
"""


def tls_backend(procs: Procs, issued: Issued, name: str) -> Proc:
    return procs.start(
        "-m",
        "tests.support.tls_backend",
        "--cert",
        str(issued.cert),
        "--key",
        str(issued.key),
        "--name",
        name,
    )


def toml_list(paths: list[Issued]) -> str:
    items = ", ".join(
        f"{{ cert = {json.dumps(str(i.cert))}, key = {json.dumps(str(i.key))} }}" for i in paths
    )
    return f"[{items}]"
