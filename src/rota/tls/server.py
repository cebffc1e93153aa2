"""The server side of TLS on one listener: certificates chosen by SNI, the settings every
context shares, and the base context whose session cache and ticket keys resume sessions.

How the certificate is chosen: the listener's base context has no certificate; OpenSSL
calls `_pick` (the SNI callback) for every ClientHello, with the server name or None, and
the callback moves the connection to the context that serves that name: an exact name
first, then a wildcard covering it, then the default (the first certificate listed).
Certificates whose names are the same set (an ECDSA and an RSA certificate for one site)
share one context, where OpenSSL picks the one the client's signature algorithms allow.

Session resumption (TLS 1.2 session IDs and tickets, TLS 1.3 tickets) lives in the base
context: OpenSSL keeps the session cache and the ticket keys of the context a connection
began on (`session_ctx`), whichever context SNI moved it to. Ticket keys are random per
context, so building a new base context rotates them: rota does it every
TICKET_KEY_SECONDS and on every reload. Tickets of the old keys then cost a full handshake.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from rota.config.model import ListenerTlsSpec
from rota.tls import certs
from rota.tls.failures import HandshakeFailures

log = logging.getLogger("rota.tls")

# Mozilla's "intermediate" configuration (ssl-config.mozilla.org, version 5.7): TLS 1.2
# suites with forward secrecy and AEAD; TLS 1.3 suites are OpenSSL's defaults.
INTERMEDIATE_CIPHERS: Final = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "DHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-CHACHA20-POLY1305",
    )
)
VERSIONS: Final = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
TICKET_KEY_SECONDS: Final = 3600.0


def configure(ctx: ssl.SSLContext, spec: ListenerTlsSpec) -> None:
    """What every context of a listener shares: versions, ciphers, ALPN, options."""
    ctx.minimum_version = VERSIONS[spec.min_version]
    ctx.set_ciphers(INTERMEDIATE_CIPHERS)
    if spec.alpn:
        ctx.set_alpn_protocols(list(spec.alpn))
    # No TLS compression (CRIME), no client-initiated renegotiation (a CPU-exhaustion
    # lever); the client's cipher order, as Mozilla's intermediate profile has it.
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE


@dataclass
class Certificates:
    """The contexts of one listener's certificates, by the names they serve."""

    default: ssl.SSLContext
    exact: dict[str, ssl.SSLContext] = field(default_factory=dict)
    wildcard: dict[str, ssl.SSLContext] = field(default_factory=dict)  # "example.com" for *.
    infos: tuple[certs.CertInfo, ...] = ()

    def find(self, name: str) -> ssl.SSLContext | None:
        found = self.exact.get(name)
        if found is None:
            _, dot, parent = name.partition(".")
            if dot:
                found = self.wildcard.get(parent)
        return found


def load_certificates(spec: ListenerTlsSpec) -> Certificates:
    """Read every certificate of `spec` (raises certs.CertProblem; the config loader has
    checked them once already, a reload checks them again)."""
    groups: dict[frozenset[str], ssl.SSLContext] = {}
    infos: list[certs.CertInfo] = []
    for entry in spec.certificates:
        info = certs.inspect(entry.cert, entry.key)
        infos.append(info)
        names = frozenset(info.names)
        ctx = groups.get(names)
        if ctx is None:
            ctx = groups[names] = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            configure(ctx, spec)
        ctx.load_cert_chain(entry.cert, entry.key)
    found = Certificates(default=next(iter(groups.values())), infos=tuple(infos))
    for names, ctx in groups.items():
        for name in sorted(names):
            table = found.wildcard if name.startswith("*.") else found.exact
            table.setdefault(name[2:] if name.startswith("*.") else name, ctx)
    return found


class ServerTls:
    """One listener's TLS: `context()` for each new connection (rotating ticket keys),
    `reload(spec)` for new certificates, `failures` for what went wrong."""

    def __init__(
        self,
        spec: ListenerTlsSpec,
        listener: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self.listener = listener
        self.clock = clock
        self.certificates = load_certificates(spec)
        self.failures = HandshakeFailures(listener, clock)
        self._base = self._new_base()
        self._rotate_at = clock() + TICKET_KEY_SECONDS

    def __repr__(self) -> str:
        return f"<ServerTls {self.listener} [{len(self.certificates.infos)} certificates]>"

    def context(self) -> ssl.SSLContext:
        """The context a new connection's handshake starts on."""
        now = self.clock()
        if now >= self._rotate_at:
            self._base = self._new_base()
            self._rotate_at = now + TICKET_KEY_SECONDS
        return self._base

    def reload(self, spec: ListenerTlsSpec) -> None:
        """Re-read the certificate files: new handshakes use them, open connections keep
        theirs. A file that became unusable keeps the certificates loaded before."""
        try:
            found = load_certificates(spec)
        except (certs.CertProblem, ssl.SSLError, OSError) as exc:
            log.warning("listener %s: tls: certificates not reloaded: %s", self.listener, exc)
            return
        self.spec = spec
        self.certificates = found
        self._base = self._new_base()
        self._rotate_at = self.clock() + TICKET_KEY_SECONDS
        warn_expired(self.listener, found.infos)

    def _new_base(self) -> ssl.SSLContext:
        base = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        configure(base, self.spec)
        base.sni_callback = self._pick
        return base

    def _pick(self, sock: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> int | None:
        found = self.certificates
        if name is not None:
            ctx = found.find(name.lower().rstrip("."))
            if ctx is None:
                if self.spec.strict_sni:
                    return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
                ctx = found.default
        elif self.spec.strict_sni:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        else:
            ctx = found.default
        sock.context = ctx
        return None


def warn_expired(listener: str, infos: tuple[certs.CertInfo, ...]) -> None:
    for info in infos:
        if info.expired():
            log.warning(
                "listener %s: tls: certificate %s expired on %s",
                listener,
                info.cert,
                info.not_after.strftime("%Y-%m-%d %H:%M UTC"),
            )
