"""A policy of the user's own in a running rota: imported from the working directory, it
picks by a header; when it raises, that request gets 503, the error is logged once, and
rota keeps serving."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.http import Client, Response
from tests.support.procs import rota, start_backend

POLICY = '''
class ByHeader:
    """The server the x-pick header names; "boom" raises; "none" declines."""

    def __init__(self, options):
        self.fallback = options["fallback"]

    def pick(self, request, servers):
        wanted = request.headers.get("x-pick", self.fallback)
        if wanted == "boom":
            raise RuntimeError("no such zone")
        if wanted == "none":
            return None
        return next((s for s in servers if s.name == wanted), servers[0])
'''

SITE = """
[listeners.web]
bind = "127.0.0.1:0"

[[listeners.web.routes]]
pool = "api"

[pools.api]
algorithm = "by_header:ByHeader"
options = {{ fallback = "s2" }}
servers = [
  {{ host = "127.0.0.1", port = {s1}, name = "s1" }},
  {{ host = "127.0.0.1", port = {s2}, name = "s2" }},
]
"""


@pytest.fixture
def backends() -> Iterator[dict[str, int]]:
    started = {name: start_backend(name=name) for name in ("s1", "s2")}
    yield {name: port for name, (_, port) in started.items()}
    for proc, _ in started.values():
        proc.stop()


def get(port: int, **headers: str) -> Response:
    with Client(port) as c:
        return c.request("GET", "/", headers={"Host": "api", "Connection": "close", **headers})


def test_a_custom_policy_picks_and_its_errors_cost_one_request(
    tmp_path: Path, backends: dict[str, int]
) -> None:
    (tmp_path / "by_header.py").write_text(POLICY)
    (tmp_path / "site.toml").write_text(SITE.format(**backends))
    proc = rota("lb", "--config", "site.toml", cwd=tmp_path)
    try:
        port = int(proc.wait_for("rota listening on").rsplit(":", 1)[1].split()[0])
        assert get(port, **{"x-pick": "s1"}).body.strip() == b"Hello from s1"
        assert get(port).body.strip() == b"Hello from s2"  # the options reached the class
        for _ in range(3):
            assert get(port, **{"x-pick": "boom"}).status == 503
        assert get(port, **{"x-pick": "none"}).status == 503
        assert get(port, **{"x-pick": "s1"}).status == 200  # still serving
        # The log comes through a pipe read by a thread: wait for it before counting.
        proc.wait_for("policy by_header:ByHeader")
        errors = [line for line in proc.lines if "policy by_header:ByHeader" in line]
        assert len(errors) == 1, proc.lines
        assert "pick failed: RuntimeError: no such zone" in errors[0]
    finally:
        assert proc.stop() == 0
