"""TLS to backends: one client context per pool (`tls = { verify, ca, sni }`), shared by
the data plane and the pool's health checks.

`verify = true` checks the chain (against `ca`, else the system's trust store) and the
name: `sni` when set, else the server's `host` (an IP address is checked against the
certificate's IP entries). The name is also sent as SNI, unless it is an IP address
(RFC 6066 section 3 forbids that; Python leaves it out).
"""

from __future__ import annotations

import ssl

from rota.config.model import BackendTlsSpec


def client_context(spec: BackendTlsSpec) -> ssl.SSLContext:
    ctx = (
        ssl.create_default_context(cafile=spec.ca)
        if spec.verify
        else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    )
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if not spec.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def server_hostname(spec: BackendTlsSpec, host: str) -> str:
    """The name checked against the backend's certificate (and sent as SNI)."""
    return spec.sni or host


def describe(exc: ssl.SSLError) -> str:
    """A failed handshake with a backend, for the log and the passive health check:
    "tls: certificate verify failed: self-signed certificate"."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"tls: certificate verify failed: {exc.verify_message}"
    what = (exc.reason or type(exc).__name__).lower().replace("_", " ")
    return f"tls: {what}"
