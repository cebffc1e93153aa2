"""The live dashboard in a real headless Chromium, against a real `rota lb --admin` in front
of real backends: the page shows every listener and server, its numbers move under traffic,
a Drain click stops traffic to that server (its backend receives nothing new) and Enable
brings it back, Disable likewise, a refused action shows the API's message, a dead backend
turns red on its timeline, the page never grows while it updates, it says "disconnected"
while rota is away and recovers by itself when rota is back, and with a token it asks for
it (or takes it from `/#token=...`) and keeps it for the tab.

Playwright drives the system's Chromium (`executable_path`); it never downloads a browser.
The test skips, saying why, when Playwright or Chromium is missing; `.ci/run` installs
Chromium so that CI always runs it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.support.http import Client
from tests.support.procs import Proc, free_port, rota, start_backend

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="Playwright for Python is not installed (pip install -e '.[dev]')",
)


def _find_chromium() -> str | None:
    for name in (os.environ.get("ROTA_CHROMIUM"), "chromium", "chromium-browser"):
        if name and (path := shutil.which(name)):
            return path
    return None


CHROMIUM = _find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium found (apt-get install chromium, or set ROTA_CHROMIUM to its path)",
)

_READY = re.compile(r"rota listening on (\w+)://127\.0\.0\.1:(\d+) \(listener (\w+)")
SERVERS = ("a", "b", "c")

CONFIG = """
[health_check]
interval = 0.5
path = "/__records"

[listeners.web]
bind = "127.0.0.1:0"

[[listeners.web.routes]]
pool = "site"

[listeners.raw]
bind = "127.0.0.1:0"
protocol = "tcp"
pool = "db"

[pools.site]
servers = [
  {{ host = "127.0.0.1", port = {a}, name = "a" }},
  {{ host = "127.0.0.1", port = {b}, name = "b" }},
  {{ host = "127.0.0.1", port = {c}, name = "c" }},
]

[pools.db]
servers = [{{ host = "127.0.0.1", port = {db}, name = "db-1" }}]
"""


# ---- processes ----------------------------------------------------------------------------


def start_recorder() -> tuple[Proc, int]:
    """A backend that records every request; its /__records (the health check path) is not
    recorded, so its count is exactly the requests rota forwarded to it."""
    proc = Proc([sys.executable, "-m", "tests.support.recording_backend"])
    try:
        line = proc.wait_for("listening on http://127.0.0.1:")
    except BaseException:
        proc.stop()
        raise
    return proc, int(line.rsplit(":", 1)[1])


def forwarded(port: int) -> int:
    """How many requests this recording backend received, asked directly."""
    with Client(port) as c:
        records: list[dict[str, Any]] = json.loads(c.request("GET", "/__records").body)
    return sum(1 for r in records if r.get("event") == "request")


def admin_get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
        return json.loads(answer.read())


def wait_for_admin(proc: Proc, port: int, timeout: float = 15.0) -> None:
    """Until the admin listener answers (401 included: it is up, and wants a token)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin_get(port, "/api/v1/stats")
            return
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                return
            raise
        except (OSError, urllib.error.URLError, ValueError):
            if proc.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the admin listener never answered:\n" + proc.output()) from None
            time.sleep(0.1)


class Site:
    def __init__(self, config: Path, backends: dict[str, int], admin: int) -> None:
        self.config = config
        self.backends = backends
        self.admin = admin
        self.extra: list[str] = []
        self.procs: dict[str, Proc] = {}
        self.workers = 1
        self.lb: Proc | None = None
        self.ports: dict[str, int] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.admin}/"

    def start(self) -> None:
        self.lb = rota(
            "lb", "--config", str(self.config), "--admin", f"127.0.0.1:{self.admin}", *self.extra
        )
        for _ in range(2):
            line = self.lb.wait_for("rota listening on")
            self.lb.lines.remove(line)
            match = _READY.search(line)
            assert match is not None, line
            self.ports[match.group(3)] = int(match.group(2))
        wait_for_admin(self.lb, self.admin)

    def stop(self) -> None:
        lb, self.lb = self.lb, None
        if lb is not None:
            assert lb.stop() == 0, lb.output()


@pytest.fixture
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    """Three recording backends (pool "site", listener "web") and a TCP pool; one process,
    or `--workers N` when the test is parametrized with N (indirect)."""
    workers: int = getattr(request, "param", 1)
    with ExitStack() as cleanup:  # every process is stopped, whatever fails on the way
        recorders: dict[str, tuple[Proc, int]] = {}
        for name in SERVERS:
            recorders[name] = start_recorder()
            cleanup.callback(recorders[name][0].stop)
        db, db_port = start_backend(name="db-1")
        cleanup.callback(db.stop)
        config = tmp_path / "site.toml"
        config.write_text(CONFIG.format(db=db_port, **{n: p for n, (_, p) in recorders.items()}))
        running = Site(config, {n: p for n, (_, p) in recorders.items()}, free_port())
        running.procs = {n: proc for n, (proc, _) in recorders.items()}
        running.workers = workers
        if workers > 1:
            running.extra = ["--workers", str(workers)]
        cleanup.callback(running.stop)
        running.start()
        yield running


class Traffic:
    """Requests through rota from one keep-alive client in a thread, one at a time (so when
    a response arrives every earlier request has finished), bounded in count and time."""

    def __init__(self, port: int, limit: int = 30_000, seconds: float = 90.0) -> None:
        self.port = port
        self.limit = limit
        self.seconds = seconds
        self.done = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        deadline = time.monotonic() + self.seconds
        client: Client | None = None
        while not self._stop.is_set() and self.done < self.limit and time.monotonic() < deadline:
            try:
                if client is None:
                    client = Client(self.port, timeout=5)
                answer = client.request("GET", "/", headers={"Host": "www.test"})
                if answer.status != 200:
                    self.failed += 1
                if answer.header("connection") == "close":
                    client.close()
                    client = None
            except OSError:
                self.failed += 1
                if client is not None:
                    client.close()
                client = None
            self.done += 1
            self._stop.wait(0.004)  # a few hundred requests a second at most: 2 shared cores
        if client is not None:
            client.close()

    def after_next(self) -> None:
        """Return once a request that started after this call has finished."""
        start = self.done
        deadline = time.monotonic() + 10
        while self.done < start + 2:
            assert time.monotonic() < deadline, "the traffic stalled"
            time.sleep(0.01)


def wait_until(condition: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# ---- the browser --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def fetched() -> list[str]:
    """Every URL the page asked for."""
    return []


@pytest.fixture
def page(browser: Any, fetched: list[str]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.on("request", lambda request: fetched.append(request.url))
    yield opened
    context.close()
    assert errors == [], f"the page threw: {errors}"


def row(pool: str, server: str) -> str:
    return f'tr.server[data-pool="{pool}"][data-server="{server}"]'


def wait_js(page: Any, expression: str, arg: Any = None, timeout: float = 20.0) -> None:
    """Wait, polling in the page, until `expression` (a function of arg) is truthy."""
    page.wait_for_function(expression, arg=arg, polling=100, timeout=timeout * 1000)


RPS = """([sel, op]) => {
  const el = document.querySelector(sel + " .rps");
  if (!el || el.dataset.value === "") return false;
  const v = Number(el.dataset.value);
  return op === "zero" ? v === 0 : v > 0;
}"""

LATENCY = r"""(sel) => {
  const p50 = document.querySelector(sel + " .p50");
  const p99 = document.querySelector(sel + " .p99");
  if (!p50 || !p99) return false;
  const low = Number(p50.dataset.value), high = Number(p99.dataset.value);
  return low > 0 && high >= low && /\d (µs|ms|s)$/.test(p50.textContent);
}"""

STATE = """([sel, state]) => {
  const el = document.querySelector(sel);
  return !!el && el.dataset.state === state && el.querySelector(".state").textContent === state;
}"""


def updates(page: Any) -> int:
    return int(page.evaluate("Number(document.body.dataset.updates || 0)"))


def wait_updates(page: Any, n: int) -> None:
    start = updates(page)
    wait_js(page, "(n) => Number(document.body.dataset.updates || 0) >= n", start + n)


# ---- the tests ----------------------------------------------------------------------------


@pytest.mark.parametrize("site", [1, 2], indirect=True, ids=["one-process", "two-workers"])
def test_the_dashboard_shows_traffic_and_drain_stops_it(
    site: Site, page: Any, fetched: list[str]
) -> None:
    page.goto(site.url)
    # Every listener and every server, with its state and its address.
    for listener in ("web", "raw"):
        page.wait_for_selector(f'tr.listener[data-listener="{listener}"]')
    assert page.text_content('tr.listener[data-listener="raw"] .protocol') == "tcp"
    for name in SERVERS:
        wait_js(page, STATE, [row("site", name), "up"])
        address = page.text_content(f"{row('site', name)} .address")
        assert address == f"127.0.0.1:{site.backends[name]}"
    wait_js(page, STATE, [row("db", "db-1"), "up"])
    assert page.get_attribute("#status", "data-state") == "live"
    assert page.text_content("#status") == "live"
    # No traffic yet: no requests per second.
    for name in SERVERS:
        wait_js(page, RPS, [row("site", name), "zero"])

    with Traffic(site.ports["web"]) as traffic:
        # The numbers move: every server's and the listener's requests/s rise above 0.
        for name in SERVERS:
            wait_js(page, RPS, [row("site", name), "positive"])
        wait_js(page, RPS, ['tr.listener[data-listener="web"]', "positive"])
        wait_js(page, LATENCY, 'tr.listener[data-listener="web"]')

        # Drain b from the page: the row says so, and b's backend gets nothing new while
        # a and c go on receiving.
        page.click(f"{row('site', 'b')} button.drain")
        wait_js(page, STATE, [row("site", "b"), "draining"])
        if site.workers > 1:
            # The supervisor tells every worker within a second: once the page shows a
            # second without a request to b, the worker serving our client knows.
            wait_js(page, RPS, [row("site", "b"), "zero"])
        traffic.after_next()  # whatever was in flight at the click has finished
        b_before = forwarded(site.backends["b"])
        others = {n: forwarded(site.backends[n]) for n in ("a", "c")}
        wait_until(
            lambda: all(forwarded(site.backends[n]) >= others[n] + 50 for n in ("a", "c")),
            "traffic to a and c",
        )
        assert forwarded(site.backends["b"]) == b_before
        wait_js(page, RPS, [row("site", "b"), "zero"])
        assert page.is_enabled(f"{row('site', 'b')} button.enable")
        assert page.is_disabled(f"{row('site', 'b')} button.drain")
        # The health timeline ends in the state the server is in.
        wait_js(
            page,
            "(sel) => document.querySelector(sel + ' canvas.timeline').dataset.last === 'draining'",
            row("site", "b"),
        )

        # Enable it again: traffic comes back to b.
        page.click(f"{row('site', 'b')} button.enable")
        wait_js(page, STATE, [row("site", "b"), "up"])
        wait_until(lambda: forwarded(site.backends["b"]) >= b_before + 20, "traffic back to b")
        wait_js(page, RPS, [row("site", "b"), "positive"])

        # Left open, the page updates in place: after more updates it holds the same nodes.
        nodes = page.evaluate("document.getElementsByTagName('*').length")
        wait_updates(page, 3)
        assert page.evaluate("document.getElementsByTagName('*').length") == nodes
    assert traffic.failed == 0
    # Everything the page needed came from rota's admin listener: nothing from elsewhere.
    assert fetched and all(url.startswith(site.url) for url in fetched), fetched


def test_server_latency_shows_under_traffic(site: Site, page: Any) -> None:
    page.goto(site.url)
    wait_js(page, STATE, [row("site", "a"), "up"])
    with Traffic(site.ports["web"], limit=2_000, seconds=30):
        wait_js(page, RPS, [row("site", "a"), "positive"])
        wait_js(page, LATENCY, row("site", "a"), timeout=5)


def test_disable_from_the_page_and_a_refused_action_is_reported(site: Site, page: Any) -> None:
    page.goto(site.url)
    wait_js(page, STATE, [row("site", "c"), "up"])
    page.click(f"{row('site', 'c')} button.disable")
    wait_js(page, STATE, [row("site", "c"), "disabled"])
    pools = {p["name"]: p for p in admin_get(site.admin, "/api/v1/stats")["pools"]}
    states = {s["name"]: s["state"] for s in pools["site"]["servers"]}
    assert states == {"a": "up", "b": "up", "c": "disabled"}
    with Traffic(site.ports["web"], limit=60) as traffic:
        wait_until(lambda: traffic.done >= 60, "60 requests")
    assert traffic.failed == 0
    assert forwarded(site.backends["c"]) == 0

    # An action the API refuses (a server that went away meanwhile) shows its error message.
    page.evaluate(
        """() => { const r = document.querySelector('tr.server[data-server="c"]');
                   r.dataset.server = "no-such-server"; }"""
    )
    page.click('tr.server[data-server="no-such-server"] button.enable')
    page.wait_for_selector('#notice[data-kind="error"]:not([hidden])')
    assert "no-such-server" in page.text_content("#notice")


def test_a_backend_that_dies_turns_red_and_its_timeline_records_it(site: Site, page: Any) -> None:
    page.goto(site.url)
    for pool, name in (("site", "a"), ("site", "b"), ("site", "c"), ("db", "db-1")):
        wait_js(page, STATE, [row(pool, name), "up"])
    site.procs["a"].stop()
    wait_js(page, STATE, [row("site", "a"), "down"])
    timeline = f"{row('site', 'a')} canvas.timeline"
    wait_js(page, "(sel) => document.querySelector(sel).dataset.last === 'down'", timeline)
    assert "down" in (page.get_attribute(timeline, "title") or "")
    assert "up" in (page.get_attribute(timeline, "title") or "")  # what it was before
    assert page.text_content("#servers-up") == "3/4"


def test_the_page_says_disconnected_while_rota_is_away_and_recovers(site: Site, page: Any) -> None:
    page.goto(site.url)
    wait_js(page, STATE, [row("site", "a"), "up"])
    assert page.text_content("#status") == "live"
    site.stop()
    page.wait_for_selector('#status[data-state="disconnected"]', timeout=15_000)
    assert page.text_content("#status") == "disconnected"
    # The rows stay (greyed), and come back to life once rota answers again.
    assert page.query_selector(row("site", "a")) is not None
    site.start()
    page.wait_for_selector('#status[data-state="live"]', timeout=20_000)
    wait_js(page, STATE, [row("site", "a"), "up"])


def test_with_a_token_the_page_asks_for_it_and_keeps_it_for_the_tab(
    site: Site, page: Any, tmp_path: Path
) -> None:
    secret = "dashboard-test-token-0123"
    (tmp_path / "token").write_text(secret + "\n")
    site.stop()
    site.extra = ["--admin-token-file", str(tmp_path / "token")]
    site.start()

    # No token: the page asks for one, says a wrong one was refused, works with the right one.
    page.goto(site.url)
    page.wait_for_selector("#auth[open]")
    assert page.get_attribute("#status", "data-state") == "unauthorized"
    assert page.query_selector("tr.server") is None
    page.fill("#auth-token", "wrong")
    page.click("#auth button[type=submit]")
    page.wait_for_selector("#auth[open] #auth-error:not([hidden])")
    page.fill("#auth-token", secret)
    page.click("#auth button[type=submit]")
    wait_js(page, STATE, [row("site", "a"), "up"])
    assert page.text_content("#status") == "live"
    # The buttons send it too.
    page.click(f"{row('site', 'a')} button.drain")
    wait_js(page, STATE, [row("site", "a"), "draining"])
    # A reload of the tab keeps it (sessionStorage): no second prompt.
    page.reload()
    wait_js(page, STATE, [row("site", "a"), "draining"])
    assert not page.is_visible("#auth")

    # A fresh tab given the token in the fragment: no prompt, and the token leaves the URL.
    other = page.context.browser.new_context().new_page()
    try:
        other.goto(site.url + "#token=" + secret)
        wait_js(other, STATE, [row("site", "a"), "draining"])
        assert "token" not in other.url
        assert not other.is_visible("#auth")
    finally:
        other.context.close()
