"""The `tls` keys: a listener's (termination), a TCP listener's `sni_routes`
(passthrough) and a pool's (TLS to its servers). Certificate files are read here, once, so
that a missing file, a key that does not match or a certificate without a name stops
start-up (exit 2) or a reload, naming the field; the runtime reads them again to serve.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from rota.config.model import (
    BackendTlsSpec,
    CertificateSpec,
    ListenerSpec,
    ListenerTlsSpec,
    Mode,
    SniRoute,
)
from rota.config.reader import Reader, field_path, show
from rota.config.routes import missing_pool
from rota.tls import certs

LISTENER_TLS_KEYS = ("certificates", "min_version", "alpn", "strict_sni")
CERT_KEYS = ("cert", "key")
POOL_TLS_KEYS = ("verify", "ca", "sni")
SNI_ROUTE_KEYS = ("sni", "pool")
REFUSED_VERSIONS = ("1.0", "1.1")
VERSIONS = ("1.2", "1.3")
HTTP_ALPN = ("http/1.1", "http/1.0")
_HOST = re.compile(r"(\*\.)?([a-z0-9_]([a-z0-9_-]*[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?")


def base_dir(source: str) -> str:
    """Relative certificate paths are read from the config file's directory."""
    if os.path.isfile(source):
        return os.path.dirname(os.path.abspath(source))
    return os.getcwd()


def listener_tls(r: Reader, path: str, raw: object, protocol: Mode, root: str) -> ListenerTlsSpec:
    section = r.section(path, raw, LISTENER_TLS_KEYS)
    where = field_path(path, "certificates")
    if "certificates" not in section:
        raise r.fail(where, 'missing: list at least one { cert = "...", key = "..." }')
    items = r.items(where, section["certificates"], "certificates")
    if not items:
        raise r.fail(where, "no certificates: list at least one")
    specs: list[CertificateSpec] = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        entry = r.section(at, item, CERT_KEYS)
        for required in CERT_KEYS:
            if required not in entry:
                raise r.fail(f"{at}.{required}", "missing: the path of a PEM file")
        cert = os.path.join(root, r.text(f"{at}.cert", entry["cert"]))
        key = os.path.join(root, r.text(f"{at}.key", entry["key"]))
        try:
            certs.inspect(cert, key)
        except certs.CertProblem as exc:
            raise r.fail(f"{at}.{exc.field}", exc.problem) from None
        specs.append(CertificateSpec(cert=cert, key=key))
    version = section.get("min_version", "1.2")
    if version in REFUSED_VERSIONS:
        raise r.fail(
            field_path(path, "min_version"),
            f"TLS {version} is refused (deprecated by RFC 8996): use 1.2 or 1.3",
        )
    version = r.choice(field_path(path, "min_version"), version, VERSIONS)
    default_alpn = ["http/1.1"] if protocol is Mode.HTTP else []
    alpn = _alpn(r, field_path(path, "alpn"), section.get("alpn", default_alpn), protocol)
    strict = r.boolean(field_path(path, "strict_sni"), section.get("strict_sni", False))
    return ListenerTlsSpec(
        certificates=tuple(specs), min_version=version, alpn=alpn, strict_sni=strict
    )


def _alpn(r: Reader, path: str, value: object, protocol: Mode) -> tuple[str, ...]:
    items = r.items(path, value, "protocol names")
    names: list[str] = []
    for i, item in enumerate(items):
        name = r.text(f"{path}[{i}]", item)
        if not name.isascii() or len(name) > 255:
            raise r.fail(f"{path}[{i}]", f"expected an ASCII protocol name, got {show(name)}")
        if protocol is Mode.HTTP and name not in HTTP_ALPN:
            raise r.fail(
                f"{path}[{i}]",
                f"an http listener speaks {' or '.join(HTTP_ALPN)}, got {show(name)}",
            )
        if name not in names:
            names.append(name)
    return tuple(names)


def sni_routes(r: Reader, path: str, raw: object, pools: Mapping[str, Any]) -> tuple[SniRoute, ...]:
    items = r.items(path, raw, "routes")
    if not items:
        raise r.fail(path, "no routes: list at least one { sni = ..., pool = ... }")
    routes: list[SniRoute] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        at = f"{path}[{i}]"
        entry = r.section(at, item, SNI_ROUTE_KEYS)
        for required in SNI_ROUTE_KEYS:
            if required not in entry:
                raise r.fail(f"{at}.{required}", "missing")
        sni = r.text(f"{at}.sni", entry["sni"]).lower().rstrip(".")
        if not _HOST.fullmatch(sni):
            raise r.fail(
                f"{at}.sni", f'expected a host name or "*.example.com", got {show(entry["sni"])}'
            )
        if sni in seen:
            raise r.fail(f"{at}.sni", f"duplicate {show(sni)} (also {path}[{seen[sni]}])")
        seen[sni] = i
        pool = r.text(f"{at}.pool", entry["pool"])
        if pool not in pools:
            raise r.fail(f"{at}.pool", missing_pool(pool, pools))
        routes.append(SniRoute(sni=sni, pool=pool))
    return tuple(routes)


def pool_tls(r: Reader, path: str, raw: object, root: str) -> BackendTlsSpec:
    section = r.section(path, raw, POOL_TLS_KEYS)
    verify = r.boolean(field_path(path, "verify"), section.get("verify", True))
    ca: str | None = None
    if "ca" in section:
        ca = os.path.join(root, r.text(field_path(path, "ca"), section["ca"]))
        pem = _read(r, field_path(path, "ca"), ca)
        if b"-----BEGIN CERTIFICATE-----" not in pem:
            raise r.fail(field_path(path, "ca"), f"{ca}: no PEM certificate in it")
        if not verify:
            raise r.fail(field_path(path, "ca"), "set with verify = false: nothing would read it")
    sni: str | None = None
    if "sni" in section:
        sni = r.text(field_path(path, "sni"), section["sni"]).lower()
        if sni.startswith("*") or not _HOST.fullmatch(sni):
            raise r.fail(field_path(path, "sni"), f"expected a host name, got {show(sni)}")
    return BackendTlsSpec(verify=verify, ca=ca, sni=sni)


def _read(r: Reader, path: str, file: str) -> bytes:
    try:
        return certs.read_pem(file, "ca")
    except certs.CertProblem as exc:
        raise r.fail(path, exc.problem) from None


def expiry_warnings(source: str, listeners: tuple[ListenerSpec, ...]) -> list[str]:
    """`SOURCE: listeners.web.tls.certificates[0].cert: expired on ...` per expired one."""
    out: list[str] = []
    for spec in listeners:
        if spec.tls is None:
            continue
        for i, entry in enumerate(spec.tls.certificates):
            try:
                info = certs.inspect(entry.cert, entry.key)
            except certs.CertProblem:
                continue  # changed since it was loaded; the runtime says so when it reads it
            if info.expired():
                when = info.not_after.strftime("%Y-%m-%d %H:%M UTC")
                out.append(
                    f"{source}: listeners.{spec.name}.tls.certificates[{i}].cert: "
                    f"{entry.cert} expired on {when}"
                )
    return out
