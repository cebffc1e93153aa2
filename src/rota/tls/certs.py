"""Certificate files read and checked at load time: names (from the SANs), key type,
expiry, and whether the key matches. Every problem is a `CertProblem` whose text the config
loader puts after the field it came from (`listeners.web.tls.certificates[0].cert: ...`).

The names come from the certificate's subjectAltName DNS entries (RFC 6125 section 6.4.4:
a client must not fall back to the subject's CN when SANs are present; rota uses the CN
only for a certificate without any SAN, as HAProxy does).
"""

from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID


class CertProblem(Exception):
    """A certificate or key that cannot be used; `field` is "cert" or "key"."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True)
class CertInfo:
    cert: str
    key: str
    names: tuple[str, ...]  # lower-case DNS names, wildcards as "*.example.com"
    key_type: str  # "ECDSA", "RSA", "EdDSA"
    not_after: datetime.datetime

    def expired(self, now: datetime.datetime | None = None) -> bool:
        return self.not_after <= (now or datetime.datetime.now(datetime.UTC))


def _refuse_password(*_: object) -> bytes:
    raise CertProblem("key", "the key is encrypted: rota reads unencrypted PEM keys only")


def read_pem(path: str, field: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise CertProblem(field, f"{path}: file not found") from None
    except IsADirectoryError:
        raise CertProblem(field, f"{path}: is a directory") from None
    except OSError as exc:
        raise CertProblem(field, f"{path}: cannot read: {exc.strerror}") from None


def inspect(cert_path: str, key_path: str) -> CertInfo:
    """Read both files, parse the certificate and check that the key is its key."""
    pem = read_pem(cert_path, "cert")
    read_pem(key_path, "key")
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise CertProblem("cert", f"{cert_path}: not a PEM certificate") from None
    names = _names(cert)
    if not names:
        raise CertProblem("cert", f"{cert_path}: no DNS name (no subjectAltName DNS entry or CN)")
    # OpenSSL's own check of the pair: the same code that will serve it.
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        probe.load_cert_chain(cert_path, key_path, password=_refuse_password)
    except CertProblem:
        raise
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        if "MISMATCH" in reason.upper():
            raise CertProblem("key", f"{key_path}: does not match the certificate") from None
        raise CertProblem("key", f"{key_path}: not usable ({reason.lower()})") from None
    return CertInfo(cert_path, key_path, names, _key_type(cert), cert.not_valid_after_utc)


def _names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        dns = ext.value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    names: list[str] = []
    for name in dns:
        name = name.lower().rstrip(".")
        if name and name not in names and _usable(name):
            names.append(name)
    return tuple(names)


def _usable(name: str) -> bool:
    """A host name, or a wildcard of one whole left-most label ("*.example.com")."""
    if name.startswith("*."):
        name = name[2:]
        if "." not in name:
            return False  # "*.com": no client accepts it
    return "*" not in name and all(label for label in name.split("."))


def _key_type(cert: x509.Certificate) -> str:
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ECDSA"
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return "EdDSA"
    return type(key).__name__


def matches(pattern: str, name: str) -> bool:
    """RFC 6125 6.4.3: "*.example.com" covers exactly one label in front of example.com."""
    if pattern == name:
        return True
    if pattern.startswith("*."):
        head, dot, rest = name.partition(".")
        return bool(head) and bool(dot) and rest == pattern[2:]
    return False
