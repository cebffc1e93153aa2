"""The dashboard is one self-contained file: nothing it needs comes from the network (no CDN,
no web font, no script or style sheet from any host), and it ships inside the package."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from html.parser import HTMLParser
from importlib.resources import files
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Attributes through which a page loads or points at another resource.
_URL_ATTRS = {"src", "href", "srcset", "action", "formaction", "poster", "data", "background"}
# Any absolute URL with a scheme (http, https, ws, ftp, ...), anywhere in the file.
_SCHEME_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://", re.IGNORECASE)
# A scheme-relative URL ("//host/...") as a string literal, in CSS url() or after @import.
_NETWORK_PATH = re.compile(
    r"""(?:["'`]|url\(\s*["']?|@import\s+["']?)//[^/\s"'`)]""",
    re.IGNORECASE,
)


class _Attrs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "script" and "src" in values:
            self.problems.append(f"<script src={values['src']!r}>: scripts are inline")
        if tag == "link" and "stylesheet" in values.get("rel", "").lower().split():
            self.problems.append(f"<link rel=stylesheet href={values.get('href')!r}>")
        for name, value in values.items():
            if name not in _URL_ATTRS:
                continue
            v = value.strip().lower()
            if v.startswith("//") or (":" in v.split("/", 1)[0] and not v.startswith("data:")):
                self.problems.append(f"<{tag} {name}={value!r}>")


def external_references(html: str) -> list[str]:
    """What in `html` would make a browser reach for another host."""
    parser = _Attrs()
    parser.feed(html)
    problems = parser.problems
    problems += [f"URL {m.group(0)!r}" for m in _SCHEME_URL.finditer(html)]
    problems += [f"network path {m.group(0)!r}" for m in _NETWORK_PATH.finditer(html)]
    return problems


def dashboard() -> str:
    """The page as the admin listener reads it (rota.admin.api.dashboard_page)."""
    return files("rota.admin").joinpath("dashboard.html").read_text(encoding="utf-8")


def test_the_dashboard_references_no_external_url() -> None:
    assert external_references(dashboard()) == []


@pytest.mark.parametrize(
    "snippet",
    [
        '<script src="//cdn.example.net/vue.js"></script>',
        '<script src="https://cdn.example.net/app.js"></script>',
        '<link rel="stylesheet" href="/theme.css">',
        '<link rel="preconnect" href="//fonts.example.com">',
        '<img src="http://example.org/logo.png">',
        "<style>@import url(//fonts.example.com/css);</style>",
        "<style>body { background: url('//img.example.com/bg.png') }</style>",
        "<script>fetch('//evil.example/api/v1/stats')</script>",
        '<script>new WebSocket("wss://example.org/live")</script>',
    ],
)
def test_the_check_catches_each_kind_of_external_reference(snippet: str) -> None:
    assert external_references(snippet) != []


def test_the_check_lets_inline_and_relative_references_pass() -> None:
    page = (
        '<link rel="icon" href="data:,"><a href="#top">top</a>'
        "<script>// a comment\nfetch('api/v1/stats'); const r = /a\\/\\/b/;</script>"
    )
    assert external_references(page) == []


def test_the_page_ships_as_package_data() -> None:
    """The admin listener reads the page from the installed package, so the wheel carries it."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = project["tool"]["setuptools"]["package-data"]["rota"]
    assert any(fnmatch("admin/dashboard.html", g) for g in globs), globs
