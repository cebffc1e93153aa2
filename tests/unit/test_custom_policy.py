"""A user's policy behind rota's Policy interface (rota.balancing.custom): what it is given,
what it may return, its hooks, and its errors costing one request and one log line."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from rota.balancing import make_policy
from rota.balancing.custom import CustomPolicy, PolicyLoadError, Request, load_class
from rota.config.model import BackendSpec, PoolSpec
from rota.http.head import BodyKind, RequestHead
from rota.outcome import Outcome
from rota.pool import Admin, Pool
from tests.support.memory import Harness


class Tiny:
    """The smallest policy: the first server offered, and every call recorded."""

    def __init__(self, options: dict[str, object]) -> None:
        self.options = options
        self.calls: list[tuple[Any, ...]] = []

    def pick(self, request: Any, servers: Any) -> Any:
        self.calls.append(("pick", request, [s.name for s in servers]))
        return servers[0]

    def on_start(self, server: Any, request: Any) -> None:
        self.calls.append(("start", server.name, request.path))

    def on_end(self, server: Any, request: Any, status: int, latency: float) -> None:
        self.calls.append(("end", server.name, request.path, status, latency))


class PickOnly:
    def __init__(self, options: dict[str, object]) -> None:
        self.choice = options.get("choice", 0)

    def pick(self, request: Any, servers: Any) -> Any:
        if self.choice == "raise":
            raise RuntimeError(f"no zone for {request.path}")
        if self.choice == "stranger":
            return "a"
        if self.choice == "none":
            return None
        return servers[int(str(self.choice))]


class Refuses:
    def __init__(self, options: dict[str, object]) -> None:
        raise ValueError("zones must be a table")

    def pick(self, request: Any, servers: Any) -> Any:
        return None


class NoPick:
    def __init__(self, options: dict[str, object]) -> None:
        pass


HERE = __name__


def pool_of(cls: str, *servers: BackendSpec, **options: object) -> Pool:
    specs = servers or tuple(BackendSpec(n, "127.0.0.1", p) for n, p in (("a", 1), ("b", 2)))
    spec = PoolSpec("p", specs, algorithm=f"{HERE}:{cls}", options=dict(options))
    return Pool(spec.servers, "p", policy=make_policy(spec))


def head(target: bytes = b"/x?q=1", fields: list[tuple[bytes, bytes]] | None = None) -> RequestHead:
    fields = fields if fields is not None else [(b"Host", b"example.com")]
    return RequestHead(
        b"GET",
        target,
        (1, 1),
        fields,
        BodyKind.NONE,
        0,
        b"example.com",
        True,
        False,
        False,
        False,
        frozenset(),
        False,
    )


def user(pool: Pool) -> Any:
    policy = pool.policy
    assert isinstance(policy, CustomPolicy)
    return policy.user


def test_make_policy_builds_the_class_with_its_options() -> None:
    pool = pool_of("Tiny", zone="eu")
    assert type(user(pool)) is Tiny
    assert user(pool).options == {"zone": "eu"}


def test_pick_gets_the_request_and_the_usable_servers() -> None:
    pool = pool_of("Tiny")
    a, b = pool.backends
    assert pool.policy.pick((), head(), b"10.0.0.1") is a
    assert pool.policy.pick((a,), head(), b"10.0.0.1") is b  # tried: not offered again
    pool.set_admin(a, Admin.DISABLED)
    assert pool.policy.pick((), head(), b"10.0.0.1") is b
    assert [c[2] for c in user(pool).calls] == [["a", "b"], ["b"], ["b"]]
    pool.set_admin(b, Admin.DRAINING)
    assert pool.policy.pick((), head(), b"10.0.0.1") is None  # nothing usable: not called
    assert len(user(pool).calls) == 3


def test_the_request_view() -> None:
    fields = [(b"Host", b"example.com"), (b"X-Zone", b" eu "), (b"Cookie", b"a=1")]
    fields.append((b"cookie", b"b=2"))
    fields.append((b"Accept", b"a"))
    fields.append((b"accept", b"b"))
    request = Request(head(b"/v1/users?id=7", fields), b"10.0.0.1")
    assert (request.method, request.path, request.query) == ("GET", "/v1/users", "id=7")
    assert (request.host, request.client_ip, request.target) == (
        "example.com",
        "10.0.0.1",
        "/v1/users?id=7",
    )
    assert request.headers["x-zone"] == "eu"
    assert request.headers["cookie"] == "a=1; b=2"
    assert request.headers["accept"] == "a, b"
    assert request.headers.get("x-none") is None and "host" in request.headers


def test_the_headers_are_built_only_when_read() -> None:
    request = Request(head(), b"10.0.0.1")
    _ = (request.path, request.host, request.client_ip)
    assert request._headers is None
    assert request.headers == {"host": "example.com"}
    assert request.headers is request.headers  # built once


def test_a_tcp_connection_is_a_request_with_only_a_client_ip() -> None:
    request = Request(None, b"::1")
    assert (request.client_ip, request.method, request.path, request.host) == ("::1", "", "", "")
    assert dict(request.headers) == {}


def test_servers_show_name_weight_and_in_flight_count() -> None:
    specs = (BackendSpec("a", "127.0.0.1", 1, weight=3), BackendSpec("b", "127.0.0.1", 2))
    pool = pool_of("Tiny", *specs)
    seen: list[Any] = []
    user(pool).pick = lambda request, servers: seen.extend(servers) or servers[1]
    pool.backends[0].active = 4
    pool.policy.pick((), head(), b"1.2.3.4")
    assert [(s.name, s.weight, s.active) for s in seen] == [("a", 3, 4), ("b", 1, 0)]
    pool.policy.pick((), head(), b"1.2.3.4")
    assert seen[0] is seen[2]  # one view per server, kept: a policy may key state on it


def test_backups_only_when_no_primary_is_usable() -> None:
    specs = (
        BackendSpec("a", "127.0.0.1", 1),
        BackendSpec("spare", "127.0.0.1", 2, backup=True),
        BackendSpec("b", "127.0.0.1", 3),
    )
    pool = pool_of("Tiny", *specs)
    a, spare, b = pool.backends
    assert pool.policy.pick((), head(), b"") is a
    assert user(pool).calls[-1][2] == ["a", "b"]
    pool.set_admin(a, Admin.DISABLED)
    pool.set_admin(b, Admin.DISABLED)
    assert pool.policy.pick((), head(), b"") is spare
    assert user(pool).calls[-1][2] == ["spare"]


def get(target: bytes) -> bytes:
    return b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target


def answer(status: int) -> bytes:
    return b"HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n" % status


def harness(cls: str) -> tuple[Harness, CustomPolicy]:
    """The data plane in memory (tests/support/memory.py), its pool balanced by `cls`."""
    h = Harness(backends=2, algorithm=f"{HERE}:{cls}")
    policy = h.runtime.pools["default"].policy
    assert isinstance(policy, CustomPolicy)
    return h, policy


def test_hooks_get_the_server_the_request_the_status_and_the_latency() -> None:
    h, policy = harness("Tiny")
    one, two = h.client(), h.client()
    one.send(get(b"/one"))
    two.send(get(b"/two"))  # both on the first server (Tiny picks it)
    # They end in the other order: each end finds its own request.
    first, second = h.backend_conns(0)
    second.send(answer(503))
    first.send(answer(200))
    calls = [c for c in policy.user.calls if c[0] != "pick"]
    assert [c[:4] for c in calls] == [
        ("start", "127.0.0.1:7001", "/one"),
        ("start", "127.0.0.1:7001", "/two"),
        ("end", "127.0.0.1:7001", "/two", 503),
        ("end", "127.0.0.1:7001", "/one", 200),
    ]
    assert all(isinstance(c[4], float) and 0 <= c[4] < 1 for c in calls if c[0] == "end")
    assert not policy._flights


def test_tcp_connections_end_in_order_with_status_0() -> None:
    pool = pool_of("Tiny")
    a = pool.backends[0]
    pool.policy.pick([], None, b"10.0.0.9")
    pool.policy.started(a)
    pool.policy.ended(a, Outcome("db", 0.0))
    assert user(pool).calls[-1][:4] == ("end", "a", "", 0)


def test_a_refused_attempt_ends_with_status_0_and_the_retry_is_offered_the_rest() -> None:
    h, policy = harness("Tiny")
    h.refuse(0)
    c = h.client()
    c.send(get(b"/r"))
    h.backend_conn(1).send(answer(200))
    assert c.received().startswith(b"HTTP/1.1 200")
    assert [c[:4] if c[0] != "pick" else c[2] for c in policy.user.calls] == [
        ["127.0.0.1:7001", "127.0.0.1:7002"],
        ("start", "127.0.0.1:7001", "/r"),
        ("end", "127.0.0.1:7001", "/r", 0),
        ["127.0.0.1:7002"],
        ("start", "127.0.0.1:7002", "/r"),
        ("end", "127.0.0.1:7002", "/r", 200),
    ]


def test_a_policy_without_hooks_keeps_nothing_per_request() -> None:
    h, policy = harness("PickOnly")
    c = h.client()
    c.send(get(b"/"))
    assert policy._picked is None and not policy._flights
    h.backend_conn(0).send(answer(200))
    assert c.received().startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize(
    ("choice", "logged"),
    [
        ("raise", "pick failed: RuntimeError: no zone for /x"),
        ("stranger", "pick failed: ValueError: returned 'a', not one of the servers given"),
        (5, "pick failed: IndexError: list index out of range"),
    ],
)
def test_a_failing_pick_is_none_and_logged_once(
    caplog: pytest.LogCaptureFixture, choice: object, logged: str
) -> None:
    pool = pool_of("PickOnly", choice=choice)
    with caplog.at_level(logging.ERROR, logger="rota.policy"):
        for _ in range(5):
            assert pool.policy.pick((), head(), b"") is None
    (record,) = caplog.records
    assert f"policy {HERE}:PickOnly: {logged}" in record.getMessage()


def test_each_distinct_error_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    pool = pool_of("PickOnly", choice="raise")
    with caplog.at_level(logging.ERROR, logger="rota.policy"):
        for target in (b"/a", b"/b", b"/a", b"/b", b"/a"):
            assert pool.policy.pick((), head(target), b"") is None
    assert [r.getMessage().rpartition(": ")[2] for r in caplog.records] == [
        "no zone for /a (each distinct error logged once)",
        "no zone for /b (each distinct error logged once)",
    ]


def test_too_many_distinct_errors_stop_being_logged(caplog: pytest.LogCaptureFixture) -> None:
    from rota.balancing.custom import MAX_DISTINCT_ERRORS

    pool = pool_of("PickOnly", choice="raise")
    with caplog.at_level(logging.ERROR, logger="rota.policy"):
        for i in range(MAX_DISTINCT_ERRORS + 50):
            pool.policy.pick((), head(f"/{i}".encode()), b"")
    assert len(caplog.records) == MAX_DISTINCT_ERRORS + 1
    assert "no more are logged" in caplog.records[-1].getMessage()


def test_none_means_none_suitable_and_is_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    pool = pool_of("PickOnly", choice="none")
    assert pool.policy.pick((), head(), b"") is None
    assert caplog.records == []


class BrokenHooks(Tiny):
    def on_start(self, server: Any, request: Any) -> None:
        raise KeyError("zone")

    def on_end(self, server: Any, request: Any, status: int, latency: float) -> None:
        raise KeyError("zone")


def test_a_failing_hook_is_logged_and_the_request_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h, _ = harness("BrokenHooks")
    with caplog.at_level(logging.ERROR, logger="rota.policy"):
        c = h.client()
        for i in range(3):
            c.send(get(b"/"))
            h.backend_conn(0).send(answer(200))
            assert c.received().count(b"HTTP/1.1 200") == i + 1
    assert [r.getMessage().split(": ")[1] for r in caplog.records] == [
        "on_start failed",
        "on_end failed",
    ]


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("mypol:Zone", "cannot import \"mypol:Zone\": No module named 'mypol'"),
        (f"{HERE}:Zone", f'cannot import "{HERE}:Zone": no Zone in {HERE}'),
        (f"{HERE}:HERE", f'"{HERE}:HERE" is not a class'),
        (f"{HERE}:NoPick", f'"{HERE}:NoPick" has no pick(request, servers) method'),
        ("mypol", 'expected "package.module:ClassName", got "mypol"'),
        ("my pol:Zone", 'expected "package.module:ClassName", got "my pol:Zone"'),
    ],
)
def test_load_class_says_what_is_wrong(path: str, problem: str) -> None:
    with pytest.raises(PolicyLoadError) as info:
        load_class(path)
    assert str(info.value) == problem


def test_a_class_that_refuses_its_options() -> None:
    with pytest.raises(PolicyLoadError) as info:
        pool_of("Refuses")
    assert str(info.value) == "Refuses(options) raised ValueError: zones must be a table"
