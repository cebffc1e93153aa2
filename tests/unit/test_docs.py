"""The docs say what rota does: what README.md and docs/*.md show a user can be acted on.

- Every configuration example (a ```toml or ```json block) loads as `rota lb` loads it.
  A block that shows one section (`[access_log]`, `[pools.api]`, a route) is loaded inside
  a small configuration of one listener and a few pools, as a user would paste it; the
  files it names (certificates, a token, a log directory) are made in a temporary
  directory, and its absolute paths point there.
- Every key the config and scenario loaders read is named in their reference page.
- Every option of every `rota` command is in the README's command-line section.
- Every relative link resolves, to a file and, with `#`, to a heading of it.
- docs/architecture.md's module map names every module of src/rota.
- docs/admin.md's metrics table is what `/metrics` exposes: names, types and labels.
- Every default and flag named in a table of settings is the code's.

Nothing is started; a new key, flag or page that the docs miss fails here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trustme

from rota.admin.exposition import Exposition, RotaCollector
from rota.cli import build_parser
from rota.config import Config, ConfigError, config_warnings, load_config
from rota.config.access_log import KEYS as ACCESS_LOG_KEYS
from rota.config.admin import ADMIN_KEYS
from rota.config.balancing import POOL_BALANCING_KEYS
from rota.config.listeners import LISTENER_KEYS, POOL_KEYS, TOP_KEYS
from rota.config.load import build_config
from rota.config.routes import ROUTE_KEYS
from rota.config.sections import HEALTH_KEYS, LIMIT_KEYS, SERVER_KEYS, TIMEOUT_KEYS
from rota.config.seed import SEED_KEYS
from rota.config.tls import CERT_KEYS, LISTENER_TLS_KEYS, POOL_TLS_KEYS, SNI_ROUTE_KEYS
from rota.lb_flags import LB_FLAGS
from rota.observe.log_format import json_line
from rota.outcome import REASONS
from rota.simulate import scenario
from tests.unit.test_access_log_format import NOW, outcome

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def fenced(page: Path, *langs: str) -> Iterator[tuple[str, str, str]]:
    """(where, language, text) of each fenced block of `page` in one of `langs`."""
    text = page.read_text()
    for m in FENCE.finditer(text):
        if m.group(1) in langs:
            line = text.count("\n", 0, m.start()) + 1
            yield f"{page.relative_to(REPO)}:{line}", m.group(1), m.group(2)


# Blocks in toml or json that are not a rota configuration, each checked below.
NOT_CONFIG = {"docs/simulate.md": "toml", "docs/access-log.md": "json"}
CONFIG_BLOCKS = [
    block
    for page in PAGES
    for block in fenced(page, "toml", "json")
    if NOT_CONFIG.get(str(page.relative_to(REPO))) != block[1]
]

# What a section shown alone is pasted into: one listener and the pools the docs name.
BASE_POOLS = ("site", "api", "db", "apps", "default")
BASE: dict[str, Any] = {
    "listeners": {"web": {"bind": "127.0.0.1:0", "routes": [{"pool": "site"}]}},
    "pools": {
        name: {"servers": [{"host": "127.0.0.1", "port": 5101 + i}]}
        for i, name in enumerate(BASE_POOLS)
    },
}


def merged(base: Mapping[str, Any], part: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in part.items():
        have = out.get(key)
        both = isinstance(have, Mapping) and isinstance(value, Mapping)
        out[key] = merged(have, value) if both else value  # type: ignore[arg-type]
    return out


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the files the examples name: certificates under certs/, the admin
    token, a directory for the access log."""
    root = tmp_path_factory.mktemp("docs")
    certs = root / "certs"
    certs.mkdir()
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(certs / "internal-ca.pem"))
    for stem, names, kind in (
        ("example", ("example.com", "www.example.com"), trustme.KeyType.ECDSA),
        ("example-rsa", ("example.com", "www.example.com"), trustme.KeyType.RSA),
        ("other", ("other.example.org",), trustme.KeyType.ECDSA),
    ):
        leaf = ca.issue_cert(*names, key_type=kind)
        leaf.cert_chain_pems[0].write_to_path(str(certs / f"{stem}.pem"))
        leaf.private_key_pem.write_to_path(str(certs / f"{stem}.key"))
    (root / "etc").mkdir()
    (root / "etc" / "admin-token").write_text("a-token-of-at-least-sixteen-characters\n")
    (root / "log").mkdir()
    return root


@pytest.mark.parametrize(
    ("where", "lang", "text"), CONFIG_BLOCKS, ids=[b[0] for b in CONFIG_BLOCKS]
)
def test_a_configuration_example_loads(
    where: str, lang: str, text: str, machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # policies.md's class, examples/zone_policy.py, imported as its docs say to run it.
    monkeypatch.syspath_prepend(str(REPO / "examples"))
    for where_docs_say, here in (("/etc/rota/", "etc/"), ("/var/log/rota/", "log/")):
        text = text.replace(where_docs_say, f"{machine}/{here}")
    data = tomllib.loads(text) if lang == "toml" else json.loads(text)
    whole = "server_list" in data or "backends" in data or {"listeners", "pools"} <= set(data)
    if not whole:
        data = merged(BASE, data)
    # A whole example as written; a section pasted into BASE as JSON (rota reads either).
    path = machine / ("site.toml" if whole and lang == "toml" else "site.json")
    path.write_text(text if whole else json.dumps(data))
    try:
        config = load_config(path)
    except ConfigError as exc:
        pytest.fail(f"{where}: {exc}")
    if whole:  # a whole example is also one without a warning (an unused pool, say)
        assert config_warnings(config) == []


def test_every_config_key_is_in_the_reference() -> None:
    page = (REPO / "docs" / "configuration.md").read_text()
    keys = {
        *TOP_KEYS,
        *LISTENER_KEYS,
        *POOL_KEYS,
        *POOL_BALANCING_KEYS,
        *ROUTE_KEYS,
        *HEALTH_KEYS,
        *TIMEOUT_KEYS,
        *LIMIT_KEYS,
        *SERVER_KEYS,
        *SEED_KEYS,
        *ADMIN_KEYS,
        *ACCESS_LOG_KEYS,
        *LISTENER_TLS_KEYS,
        *CERT_KEYS,
        *POOL_TLS_KEYS,
        *SNI_ROUTE_KEYS,
    }
    missing = sorted(k for k in keys if f"`{k}`" not in page)
    assert missing == []


def test_the_scenario_reference_names_every_key_and_no_other() -> None:
    page = REPO / "docs" / "simulate.md"
    ((_, _, text),) = fenced(page, "toml")
    data = tomllib.loads(text)
    tables = {
        "": (data, scenario.TOP_KEYS),
        "load": (data["load"], scenario.LOAD_KEYS),
        "load.think": (data["load"]["think"], scenario.DIST_KEYS),
        "health": (data["health"], scenario.HEALTH_KEYS),
        **{f"servers[{i}]": (s, scenario.SERVER_KEYS) for i, s in enumerate(data["servers"])},
        **{
            f"servers[{i}].service": (s["service"], scenario.DIST_KEYS)
            for i, s in enumerate(data["servers"])
        },
        **{f"policies[{i}]": (p, scenario.POLICY_KEYS) for i, p in enumerate(data["policies"])},
        **{f"events[{i}]": (e, scenario.EVENT_KEYS) for i, e in enumerate(data["events"])},
    }
    for where, (table, known) in tables.items():
        assert set(table) <= set(known), f"{where}: {set(table) - set(known)}"
    every = {
        *scenario.TOP_KEYS,
        *scenario.LOAD_KEYS,
        *scenario.HEALTH_KEYS,
        *scenario.SERVER_KEYS,
        *scenario.DIST_KEYS,
        *scenario.POLICY_KEYS,
        *scenario.EVENT_KEYS,
    }
    words = set(re.findall(r"\w+", page.read_text()))
    assert sorted(every - words) == []


def test_the_access_log_sample_is_a_line_rota_writes() -> None:
    ((_, _, text),) = fenced(REPO / "docs" / "access-log.md", "json")
    sample = json.loads(text)
    written = json.loads(json_line(outcome(), NOW))
    assert list(sample) == list(written)
    assert {k: type(v) for k, v in sample.items()} == {k: type(v) for k, v in written.items()}


def test_the_access_log_tables_name_every_key_and_every_end() -> None:
    page = (REPO / "docs" / "access-log.md").read_text()
    keys_table = page[page.index("| key | meaning |") : page.index("### `end`")]
    ends_table = page[page.index("| `end` | HTTP | TCP |") :]
    rows = re.findall(r"^\| (`[^|]*) \|", keys_table, re.M)
    keys = [k for row in rows for k in re.findall(r"`(\w+)`", row)]
    assert keys == list(json.loads(json_line(outcome(), NOW)))
    ends = re.findall(r"^\| `(\w+)` \|", ends_table, re.M)[1:]  # after the header row
    assert ends == list(REASONS)


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_option_of_every_command_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Command line") :]
    section = section[: section.index("\n## ", 1)]
    missing = [
        f"rota {name} {option}"
        for name, parser in _commands().items()
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
        if not re.search(re.escape(option) + r"(?![\w-])", section)
    ]
    assert missing == []


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of `page`'s headings: lower-case, punctuation but `-` and `_`
    dropped, spaces as `-`; a repeated heading gets `-1`, `-2`..."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    text = FENCE.sub("", page.read_text())
    for heading in re.findall(r"^#+\s+(.*)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", FENCE.sub("", page.read_text())):
        if re.match(r"\w+://", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists() or (anchor and dest.suffix == ".md" and anchor not in _anchors(dest)):
            broken.append(target)
    assert broken == []


def test_the_module_map_names_every_module() -> None:
    """docs/architecture.md's map: each module of a package in that package's entry (a
    `config/` line and its continuations), each top-level one in a top-level entry."""
    text = (REPO / "docs" / "architecture.md").read_text()
    start = text.index("```\nsrc/rota/\n") + len("```\nsrc/rota/\n")
    block = text[start : text.index("\n```", start)]
    entries: dict[str, str] = {}
    package = ""
    for line in block.splitlines():
        entry = re.match(r"  (\S+)", line)
        if entry:
            package = entry.group(1).split("/")[0] + "/" if "/" in entry.group(1) else ""
        entries[package] = entries.get(package, "") + line + "\n"
    missing = []
    for path in sorted((REPO / "src" / "rota").rglob("*.py")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        parts = path.relative_to(REPO / "src" / "rota").parts
        package = parts[0] + "/" if len(parts) > 1 else ""
        if not re.search(r"(?<!\w)" + re.escape(path.name), entries.get(package, "")):
            missing.append("/".join(parts))
    assert missing == []


def test_the_metrics_table_is_what_metrics_exposes() -> None:
    documented = {
        name: (kind, tuple(label.strip() for label in labels.split(",") if label.strip()))
        for name, kind, labels in re.findall(
            r"^\| `(rota_\w+)` \| (\w+) \|([\w, ]*)\|",
            (REPO / "docs" / "admin.md").read_text(),
            re.M,
        )
    }
    nothing = SimpleNamespace(pools={}, config=SimpleNamespace(listeners=()))
    collector = RotaCollector(nothing, dict, list)  # type: ignore[arg-type]
    text = Exposition(collector).render({}).decode()
    exposed = {}
    for family in collector.collect():
        # The exposition's own name for it (counters end in _total), and its label names
        # (prometheus-client keeps them on the family even when it has no sample yet).
        (name,) = (
            n
            for n, kind in re.findall(r"^# TYPE (\S+) (\w+)$", text, re.M)
            if kind == family.type and n in (family.name, f"{family.name}_total")
        )
        exposed[name] = (family.type, tuple(family._labelnames))  # type: ignore[attr-defined]
    assert documented == exposed


# Tables of settings: (page, the line its header starts with or the heading it follows, the
# columns of the key, the flag and the default, and the prefix of the key's dotted name).
SETTINGS_TABLES = (
    ("README.md", "| timeout | flag |", "timeout", "flag", "default", "timeouts."),
    ("docs/configuration.md", "### Top level", "key", None, "default", ""),
    ("docs/configuration.md", "### `health_check`", "key", "flag", "default", "health_check."),
    ("docs/configuration.md", "### `timeouts` (seconds)", "key", "flag", "default", "timeouts."),
    ("docs/configuration.md", "### `limits`", "key", "flag", "default", "limits."),
    ("docs/configuration.md", "### `admin`", "key", "flag", "default", "admin."),
    ("docs/configuration.md", "### `access_log`", "key", "flag", "default", "access_log."),
    ("docs/configuration.md", "Only the server list is required.", "key", "flag", "default", ""),
    (
        "docs/health-checks.md",
        "| flag of",
        "config key (`health_check`)",
        "flag of `rota lb`",
        "default",
        "health_check.",
    ),
    ("docs/tcp-mode.md", "## Options", "config", "flag", "default", ""),
)


def table_rows(page: str, after: str) -> list[dict[str, str]]:
    """The rows of the first table at or after the line that starts with `after`."""
    lines = (REPO / page).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(after))
    first = next(i for i in range(start, len(lines)) if lines[i].startswith("|"))

    def cells(line: str) -> list[str]:
        return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]

    header = cells(lines[first])
    rows = []
    for line in lines[first + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, cells(line), strict=True)))
    return rows


def loaded_defaults() -> dict[str, object]:
    """What a seed file with one server loads to: every default as rota applies it."""
    seed = build_config({"server_list": [{"host": "127.0.0.1", "port": 5001}]}, "seed.json", {})
    return defaults_of(seed)


def defaults_of(c: Config) -> dict[str, object]:
    listener, pool, health = c.listeners[0], c.pools[0], c.health
    out: dict[str, object] = {
        "workers": c.workers,
        "drain_timeout": c.drain_timeout,
        "listen.host": listener.host,
        "listen.port": listener.port,
        "mode": listener.protocol.value,
        "send_proxy": listener.send_proxy,
        "accept_proxy": listener.accept_proxy,
        "via": listener.via,
        "algorithm": pool.algorithm,
        "access_log.path": c.access_log.path,
        "access_log.format": c.access_log.format,
        "admin.bind": None,
        "admin.token_file": None,
        "health_check.interval": health.interval,
        "health_check.timeout": health.timeout,
        "health_check.path": health.path,
        "health_check.status": f"{health.status_min}-{health.status_max}",
        "health_check.rise": health.rise,
        "health_check.fall": health.fall,
        "health_check.type": health.kind.value,
    }
    for spec, prefix in ((c.timeouts, "timeouts."), (c.limits, "limits.")):
        for f in dataclasses.fields(spec):
            out[prefix + f.name] = getattr(spec, f.name)
    return out


NONE_WORDS = ("none", "null", "absent", "no", "(off)", "as", "off")


def matches(text: str, value: object) -> bool:
    """A documented default (`5`, `"200-399"`, `2, or the interval if smaller`) is `value`."""
    word = re.split(r",| \(|\s", text.replace("`", "").strip(), maxsplit=1)[0].strip('"')
    if value is None:
        return word in NONE_WORDS
    if isinstance(value, bool):
        return word == ("true" if value else "false")
    if isinstance(value, int | float):
        return re.fullmatch(r"[\d,.]+", word) is not None and float(word) == value
    return word == value


@pytest.mark.parametrize(
    ("page", "after", "key", "flag", "default", "prefix"),
    SETTINGS_TABLES,
    ids=[f"{t[0]}: {t[1]}" for t in SETTINGS_TABLES],
)
def test_a_table_of_settings_names_the_codes_defaults_and_flags(
    page: str, after: str, key: str, flag: str | None, default: str, prefix: str
) -> None:
    defaults = loaded_defaults()
    field_of = {name: f.field for f in LB_FLAGS for name in (f.flag, *f.aliases)}
    checked = 0
    for row in table_rows(page, after):
        named = re.match(r"`([\w.]+)`", row[key])
        if named is None:
            continue
        field = prefix + named.group(1)
        if field in defaults:
            assert matches(row[default], defaults[field]), (field, row[default], defaults[field])
            checked += 1
        for typed in re.findall(r"--[a-z][a-z-]*", row[flag] if flag else ""):
            assert field_of.get(typed) == field, (typed, field)
            checked += 1
    assert checked >= 2
