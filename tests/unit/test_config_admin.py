"""The `[admin]` section and `--admin`: off by default, loopback unless a token guards it,
never on a traffic listener's port; every error names the field (or the flag)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rota.config import ConfigError, load_config
from rota.config.show import to_toml

SITE = """
[listeners.web]
bind = "127.0.0.1:8080"
[[listeners.web.routes]]
pool = "app"
[pools.app]
servers = [{ host = "127.0.0.1", port = 9001 }]
"""


def load(tmp_path: Path, admin: str, **flags: str) -> object:
    path = tmp_path / "rota.toml"
    path.write_text(SITE + admin)
    names = {"admin.bind": "--admin", "admin.token_file": "--admin-token-file"}
    return load_config(path, flags, {k: names[k] for k in flags}).admin


def test_off_unless_configured(tmp_path: Path) -> None:
    assert load(tmp_path, "") is None


def test_a_loopback_bind_needs_no_token(tmp_path: Path) -> None:
    spec = load(tmp_path, '[admin]\nbind = "127.0.0.1:9901"\n')
    assert spec is not None and spec.address == "127.0.0.1:9901"  # type: ignore[attr-defined]
    spec = load(tmp_path, "", **{"admin.bind": "[::1]:9901"})
    assert spec is not None and spec.host == "::1"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("admin", "flags", "message"),
    [
        ('[admin]\nbind = "0.0.0.0:9901"\n', {}, 'admin.bind: "0.0.0.0:9901" is not a loopback'),
        ("", {"admin.bind": "10.1.2.3:9901"}, '--admin: "10.1.2.3:9901" is not a loopback'),
        ('[admin]\nbind = "127.0.0.1:8080"\n', {}, "also bound by listeners.web"),
        ('[admin]\nbind = "127.0.0.1"\n', {}, 'admin.bind: expected "host:port"'),
        ('[admin]\ntoken_file = "x"\n', {}, "admin.bind: missing"),
        ('[admin]\nbind = "127.0.0.1:1"\ntokenfile = "x"\n', {}, 'did you mean "token_file"'),
        (
            '[admin]\nbind = "0.0.0.0:9901"\ntoken_file = "/nonexistent/token"\n',
            {},
            "admin.token_file: /nonexistent/token: file not found",
        ),
    ],
)
def test_refused(tmp_path: Path, admin: str, flags: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, admin, **flags)
    assert message in str(info.value)


def test_a_token_allows_any_address_and_must_be_long(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("short\n")
    with pytest.raises(ConfigError, match="at least 16 characters"):
        load(tmp_path, f'[admin]\nbind = "0.0.0.0:9901"\ntoken_file = "{token}"\n')
    token.write_text("a-long-enough-secret-token\n")
    spec = load(tmp_path, f'[admin]\nbind = "0.0.0.0:9901"\ntoken_file = "{token}"\n')
    assert spec is not None


def test_check_config_shows_it(tmp_path: Path) -> None:
    path = tmp_path / "rota.toml"
    path.write_text(SITE + '[admin]\nbind = "127.0.0.1:9901"\n')
    assert '[admin]\nbind = "127.0.0.1:9901"' in to_toml(load_config(path))
