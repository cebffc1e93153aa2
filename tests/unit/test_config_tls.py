"""The `tls` keys: every bad certificate, key or value names its field; expired
certificates are a warning; paths are read from the config file's directory."""

from __future__ import annotations

import datetime
import os
import textwrap
from pathlib import Path

import pytest
import trustme

from rota.config import ConfigError, config_warnings, load_config
from rota.config.model import BackendTlsSpec, SniRoute

POOL = """
[pools.api]
servers = [{ host = "127.0.0.1", port = 5001 }]
"""


@pytest.fixture(scope="module")
def pems(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("pems")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(where / "ca.pem")
    for stem, kw in {
        "good": {"identities": ("a.example.com", "*.b.example.com")},
        "other": {"identities": ("a.example.com",)},
        "old": {
            "identities": ("old.example.com",),
            "not_after": datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
        },
        "ip": {"identities": ("127.0.0.1",)},
    }.items():
        identities = kw.pop("identities")
        leaf = ca.issue_cert(*identities, **kw)  # type: ignore[arg-type]
        leaf.cert_chain_pems[0].write_to_path(where / f"{stem}.pem")
        leaf.private_key_pem.write_to_path(where / f"{stem}.key")
    (where / "garbage.pem").write_text("not a certificate\n")
    return where


def load(where: Path, text: str) -> object:
    path = where / "site.toml"
    path.write_text(textwrap.dedent(text) + POOL)
    return load_config(path)


def error(where: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(where, text)
    return str(info.value).replace(str(where) + "/", "")


def web(tls: str) -> str:
    return f"""
    [listeners.web]
    bind = "127.0.0.1:8443"
    tls = {tls}
    [[listeners.web.routes]]
    pool = "api"
    """


def test_relative_paths_are_read_from_the_config_directory(pems: Path) -> None:
    config = load(pems, web('{ certificates = [{ cert = "good.pem", key = "good.key" }] }'))
    tls = config.listeners[0].tls  # type: ignore[attr-defined]
    assert tls.certificates[0].cert == str(pems / "good.pem")
    assert tls.min_version == "1.2"
    assert tls.alpn == ("http/1.1",)
    assert tls.strict_sni is False


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        (
            '{ certificates = [{ cert = "missing.pem", key = "good.key" }] }',
            "listeners.web.tls.certificates[0].cert: missing.pem: file not found",
        ),
        (
            '{ certificates = [{ cert = "good.pem", key = "other.key" }] }',
            "listeners.web.tls.certificates[0].key: other.key: does not match the certificate",
        ),
        (
            '{ certificates = [{ cert = "garbage.pem", key = "good.key" }] }',
            "listeners.web.tls.certificates[0].cert: garbage.pem: not a PEM certificate",
        ),
        (
            '{ certificates = [{ cert = "ip.pem", key = "ip.key" }] }',
            "listeners.web.tls.certificates[0].cert: ip.pem: no DNS name",
        ),
        (
            '{ certificates = [{ cert = "good.pem" }] }',
            "listeners.web.tls.certificates[0].key: missing",
        ),
        ("{ certificates = [] }", "listeners.web.tls.certificates: no certificates"),
        (
            '{ certificates = [{ cert = "good.pem", key = "good.key" }], min_version = "1.1" }',
            "listeners.web.tls.min_version: TLS 1.1 is refused",
        ),
        (
            '{ certificates = [{ cert = "good.pem", key = "good.key" }], min_version = "1.0" }',
            "listeners.web.tls.min_version: TLS 1.0 is refused",
        ),
        (
            '{ certificates = [{ cert = "good.pem", key = "good.key" }], alpn = ["h2"] }',
            'listeners.web.tls.alpn[0]: an http listener speaks http/1.1 or http/1.0, got "h2"',
        ),
        (
            '{ certificates = [{ cert = "good.pem", key = "good.key" }], strict = true }',
            'listeners.web.tls: unknown field "strict"',
        ),
    ],
)
def test_a_bad_listener_tls_names_its_field(pems: Path, tls: str, message: str) -> None:
    assert message in error(pems, web(tls))


def test_a_key_that_cannot_be_read_names_the_key(pems: Path) -> None:
    (pems / "dir.key").mkdir(exist_ok=True)
    text = error(pems, web('{ certificates = [{ cert = "good.pem", key = "dir.key" }] }'))
    assert "listeners.web.tls.certificates[0].key: dir.key: is a directory" in text


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file of mode 000 anyway")
def test_an_unreadable_key_names_the_key(pems: Path) -> None:
    key = pems / "locked.key"
    key.write_bytes((pems / "good.key").read_bytes())
    key.chmod(0)
    try:
        text = error(pems, web('{ certificates = [{ cert = "good.pem", key = "locked.key" }] }'))
    finally:
        key.chmod(0o600)
    assert "certificates[0].key: locked.key: cannot read: Permission denied" in text


def test_an_expired_certificate_is_a_warning(pems: Path) -> None:
    config = load(pems, web('{ certificates = [{ cert = "old.pem", key = "old.key" }] }'))
    warnings = config_warnings(config)  # type: ignore[arg-type]
    assert any(
        "listeners.web.tls.certificates[0].cert:" in w and "expired on 2020-01-01" in w
        for w in warnings
    )


def test_sni_routes_and_a_pool_tls(pems: Path) -> None:
    config = load(
        pems,
        """
        [listeners.sni]
        bind = "127.0.0.1:8443"
        protocol = "tcp"
        sni_routes = [{ sni = "DB.example.com", pool = "api" }, { sni = "*.x.org", pool = "api" }]
        [pools.db]
        servers = [{ host = "127.0.0.1", port = 5432 }]
        tls = { ca = "ca.pem", sni = "db.internal" }
        """,
    )
    listener = config.listeners[0]  # type: ignore[attr-defined]
    assert listener.pool is None
    assert listener.sni_routes == (SniRoute("db.example.com", "api"), SniRoute("*.x.org", "api"))
    db = config.pool("db")  # type: ignore[attr-defined]
    assert db.tls == BackendTlsSpec(verify=True, ca=str(pems / "ca.pem"), sni="db.internal")
    assert db.health.tls == db.tls  # the health checks speak it too


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            """
            [listeners.web]
            bind = "127.0.0.1:80"
            sni_routes = [{ sni = "a.b", pool = "api" }]
            routes = [{ pool = "api" }]
            """,
            'listeners.web.sni_routes: only for protocol "tcp"',
        ),
        (
            """
            [listeners.t]
            bind = "127.0.0.1:80"
            protocol = "tcp"
            sni_routes = [{ sni = "a.b", pool = "nope" }]
            """,
            "listeners.t.sni_routes[0].pool:",
        ),
        (
            """
            [listeners.t]
            bind = "127.0.0.1:80"
            protocol = "tcp"
            sni_routes = [{ sni = "a.b", pool = "api" }, { sni = "A.b", pool = "api" }]
            """,
            'listeners.t.sni_routes[1].sni: duplicate "a.b"',
        ),
        (
            """
            [listeners.t]
            bind = "127.0.0.1:80"
            protocol = "tcp"
            sni_routes = [{ sni = "a..b", pool = "api" }]
            """,
            "listeners.t.sni_routes[0].sni: expected a host name",
        ),
        (
            """
            [listeners.t]
            bind = "127.0.0.1:80"
            protocol = "tcp"
            pool = "api"
            [pools.x]
            servers = [{ host = "127.0.0.1", port = 1 }]
            tls = { verify = false, ca = "ca.pem" }
            """,
            "pools.x.tls.ca: set with verify = false",
        ),
        (
            """
            [listeners.t]
            bind = "127.0.0.1:80"
            protocol = "tcp"
            pool = "api"
            [pools.x]
            servers = [{ host = "127.0.0.1", port = 1 }]
            tls = { ca = "nothing.pem" }
            """,
            "pools.x.tls.ca: nothing.pem: file not found",
        ),
    ],
)
def test_bad_passthrough_and_pool_tls_name_the_field(pems: Path, text: str, message: str) -> None:
    assert message in error(pems, text)


def test_an_encrypted_key_is_refused_naming_the_key(pems: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key((pems / "good.key").read_bytes(), None)
    (pems / "enc.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    text = error(pems, web('{ certificates = [{ cert = "good.pem", key = "enc.key" }] }'))
    assert "listeners.web.tls.certificates[0].key: the key is encrypted" in text
