"""The compiled route table: every rule of rota.http.routing, table-driven."""

from __future__ import annotations

import httptools
import pytest

from rota.config.model import HeaderEdits, Redirect, Respond, RouteSpec
from rota.http.routing import (
    Route,
    RouteTable,
    host_name,
    request_path,
    rewrite_target,
    shadowed,
)

Fields = list[tuple[bytes, bytes]]


def taken(
    routes: list[RouteSpec],
    *,
    method: bytes = b"GET",
    target: bytes = b"/",
    host: bytes | None = b"example.com",
    fields: Fields | None = None,
) -> int | None:
    """The index of the route a request takes, None for no route (404)."""
    route = RouteTable(routes).match(method, target, host, fields or [])
    return None if route is None else route.index


# --- host ------------------------------------------------------------------------------------

HOST_CASES = [
    # (route host, request Host, matches)
    ("example.com", b"example.com", True),
    ("example.com", b"EXAMPLE.com", True),
    ("example.com", b"example.com:8080", True),
    ("example.com", b"example.com.", True),
    ("example.com", b"Example.Com.:80", True),
    ("example.com", b"example.com..", False),  # one trailing dot only
    ("example.com", b"www.example.com", False),
    ("example.com", b"example.org", False),
    ("example.com", b"", False),
    ("*.example.com", b"a.example.com", True),
    ("*.example.com", b"a.b.example.com", True),
    ("*.example.com", b"A.Example.COM:443", True),
    ("*.example.com", b"a.example.com.", True),
    ("*.example.com", b"example.com", False),
    ("*.example.com", b"aexample.com", False),
    ("*.example.com", b"a.example.org", False),
    ("127.0.0.1", b"127.0.0.1:8080", True),
    ("[::1]", b"[::1]:8080", True),
    ("[::1]", b"[::1]", True),
    ("::1", b"[::1]:8080", True),  # the spec may write IPv6 without brackets
    ("[::1]", b"[::2]:8080", False),
]


@pytest.mark.parametrize(("route_host", "request_host", "matches"), HOST_CASES)
def test_host(route_host: str, request_host: bytes, matches: bool) -> None:
    routes = [RouteSpec(pool="a", host=route_host)]
    assert taken(routes, host=request_host) == (0 if matches else None)


def test_no_host_only_matches_hostless_routes() -> None:
    routes = [
        RouteSpec(pool="a", host="example.com"),
        RouteSpec(pool="b", host="*.example.com"),
        RouteSpec(pool="c", path_prefix="/x"),
        RouteSpec(pool="d"),
    ]
    assert taken(routes, host=None, target=b"/x") == 2
    assert taken(routes, host=None, target=b"/y") == 3
    assert taken(routes[:2], host=None) is None


def test_exact_wildcard_and_hostless_merge_in_route_order() -> None:
    routes = [
        RouteSpec(pool="a", path="/1"),
        RouteSpec(pool="b", host="*.example.com", path="/2"),
        RouteSpec(pool="c", host="api.example.com", path_prefix="/"),
        RouteSpec(pool="d", host="*.b.example.com"),
        RouteSpec(pool="e"),
    ]
    assert taken(routes, host=b"api.example.com", target=b"/1") == 0
    assert taken(routes, host=b"api.example.com", target=b"/2") == 1
    assert taken(routes, host=b"api.example.com", target=b"/3") == 2
    assert taken(routes, host=b"x.b.example.com", target=b"/2") == 1
    assert taken(routes, host=b"x.b.example.com", target=b"/3") == 3
    assert taken(routes, host=b"x.example.com", target=b"/3") == 4
    assert taken(routes, host=b"other", target=b"/1") == 0
    assert taken(routes, host=b"other", target=b"/2") == 4


def test_memo_does_not_change_answers() -> None:
    table = RouteTable([RouteSpec(pool="a", host="a.example.com"), RouteSpec(pool="b", path="/b")])
    for _ in range(3):
        route = table.match(b"GET", b"/", b"A.example.com:1", [])
        assert route is not None and route.index == 0
        assert table.match(b"GET", b"/", b"b.example.com", []) is None
    # Past the memo's limit, Host values are looked up every time, with the same answers.
    for i in range(600):
        route = table.match(b"GET", b"/b", b"h%d.example.com" % i, [])
        assert route is not None and route.index == 1
    route = table.match(b"GET", b"/", b"a.example.com.", [])
    assert route is not None and route.index == 0


@pytest.mark.parametrize(
    ("host", "name"),
    [
        (b"Example.COM", b"example.com"),
        (b"example.com:80", b"example.com"),
        (b"example.com.:80", b"example.com"),
        (b"[::1]:80", b"[::1]"),
        (b"[::FFFF:1.2.3.4]", b"[::ffff:1.2.3.4]"),
        (b"", b""),
        (b"10.0.0.1:", b"10.0.0.1"),
    ],
)
def test_host_name(host: bytes, name: bytes) -> None:
    assert host_name(host) == name


# --- path ------------------------------------------------------------------------------------

PATH_CASES = [
    # (target, its path)
    (b"/", b"/"),
    (b"/a/b", b"/a/b"),
    (b"/a/b?q=1", b"/a/b"),
    (b"/a?", b"/a"),
    (b"/a%2Fb", b"/a%2Fb"),  # not decoded
    (b"http://h/a?q", b"/a"),
    (b"http://h", b"/"),
    (b"http://h?q", b"/"),
    (b"http://h:80/a/b", b"/a/b"),
    (b"HTTPS://h/x", b"/x"),
    (b"*", b"*"),
]


@pytest.mark.parametrize(("target", "path"), PATH_CASES)
def test_request_path(target: bytes, path: bytes) -> None:
    assert request_path(target) == path


PATH_MATCH_CASES = [
    # (path, path_prefix, target, matches)
    ("/a", None, b"/a", True),
    ("/a", None, b"/a?x", True),
    ("/a", None, b"/a/", False),
    ("/a", None, b"/A", False),
    ("/a", None, b"http://example.com/a?x", True),
    ("/", None, b"http://example.com", True),
    ("*", None, b"*", True),
    ("/a%20b", None, b"/a%20b", True),
    ("/a b", None, b"/a%20b", False),
    (None, "/v1", b"/v1", True),
    (None, "/v1", b"/v1/x", True),
    (None, "/v1", b"/v1x", True),  # a plain byte prefix
    (None, "/v1/", b"/v1", False),
    (None, "/v1", b"/v2/v1", False),
    (None, "/v1", b"/x?/v1", False),  # the query is not the path
    (None, "/v1", b"http://example.com/v1/x", True),
    (None, "/", b"*", False),
    (None, "", b"*", True),
]


@pytest.mark.parametrize(("path", "prefix", "target", "matches"), PATH_MATCH_CASES)
def test_path(path: str | None, prefix: str | None, target: bytes, matches: bool) -> None:
    routes = [RouteSpec(pool="a", path=path, path_prefix=prefix)]
    assert taken(routes, target=target) == (0 if matches else None)


# --- methods and headers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "matches"),
    [(b"GET", True), (b"POST", True), (b"PUT", False), (b"get", False), (b"HEAD", False)],
)
def test_methods(method: bytes, matches: bool) -> None:
    routes = [RouteSpec(pool="a", methods=("GET", "POST"))]
    assert taken(routes, method=method) == (0 if matches else None)


HEADER_CASES: list[tuple[Fields, bool]] = [
    ([(b"X-Canary", b"1")], True),
    ([(b"x-canary", b"1")], True),
    ([(b"X-CANARY", b"1 \t")], True),  # trailing OWS, as llhttp leaves it
    ([(b"X-Canary", b" 1")], True),
    ([(b"X-Canary", b"2"), (b"X-Canary", b"1")], True),  # any of repeated lines
    ([(b"X-Canary", b"1, 2")], False),
    ([(b"X-Canary", b"")], False),
    ([(b"X-Canary-X", b"1")], False),
    ([], False),
]


@pytest.mark.parametrize(("fields", "matches"), HEADER_CASES)
def test_headers(fields: Fields, matches: bool) -> None:
    routes = [RouteSpec(pool="a", headers=(("x-canary", "1"),))]
    assert taken(routes, fields=fields) == (0 if matches else None)


def test_header_values_are_case_sensitive_and_all_are_needed() -> None:
    routes = [RouteSpec(pool="a", headers=(("x-a", "On"), ("x-b", "1")))]
    assert taken(routes, fields=[(b"X-A", b"On"), (b"X-B", b"1")]) == 0
    assert taken(routes, fields=[(b"X-A", b"on"), (b"X-B", b"1")]) is None
    assert taken(routes, fields=[(b"X-A", b"On")]) is None


def test_every_key_must_match() -> None:
    route = RouteSpec(
        pool="a",
        host="api.example.com",
        path_prefix="/v1/",
        methods=("POST",),
        headers=(("x-canary", "1"),),
    )
    good = {
        "method": b"POST",
        "target": b"/v1/x",
        "host": b"api.example.com",
        "fields": [(b"X-Canary", b"1")],
    }
    assert taken([route], **good) == 0  # type: ignore[arg-type]
    for key, bad in [
        ("method", b"GET"),
        ("target", b"/v2/x"),
        ("host", b"www.example.com"),
        ("fields", []),
    ]:
        assert taken([route], **{**good, key: bad}) is None  # type: ignore[arg-type]


def test_first_match_wins_and_none_is_404() -> None:
    routes = [
        RouteSpec(pool="a", path_prefix="/a"),
        RouteSpec(pool="b", path_prefix="/"),
        RouteSpec(pool="c"),
    ]
    assert taken(routes, target=b"/a/b") == 0
    assert taken(routes, target=b"/b") == 1
    assert taken(routes, target=b"*") == 2
    assert taken(routes[:2], target=b"*") is None
    assert taken([], target=b"/") is None


# --- only ------------------------------------------------------------------------------------


def test_only_is_the_catch_all_of_a_one_route_table() -> None:
    table = RouteTable([RouteSpec(pool="default")])
    assert table.only is table.routes[0]
    assert table.only.pool == "default"
    assert table.match(b"GET", b"*", None, []) is table.only


@pytest.mark.parametrize(
    "routes",
    [
        [],
        [RouteSpec(pool="a", host="example.com")],
        [RouteSpec(pool="a", path="/x"), RouteSpec(pool="b")],
        [RouteSpec(pool="a", methods=("GET",))],
        [RouteSpec(pool="a", path_prefix="")],  # matches everything, but is not a catch-all
    ],
)
def test_no_only(routes: list[RouteSpec]) -> None:
    assert RouteTable(routes).only is None


def test_only_with_unreachable_routes_after_it() -> None:
    table = RouteTable([RouteSpec(pool="a"), RouteSpec(pool="b", path="/x")])
    assert table.only is table.routes[0]


# --- strip_prefix ----------------------------------------------------------------------------

REWRITE_CASES = [
    # (target, prefix, rewritten)
    (b"/v1/users", b"/v1", b"/users"),
    (b"/v1", b"/v1", b"/"),
    (b"/v1?x=1", b"/v1", b"/?x=1"),
    (b"/v1/?x=1", b"/v1", b"/?x=1"),
    (b"/v1/a?b=/v1", b"/v1", b"/a?b=/v1"),
    (b"/v1x", b"/v1", b"/x"),  # the rest gets a leading slash
    (b"/v1/users", b"/v1/", b"/users"),
    (b"/v2/users", b"/v1", b"/v2/users"),  # not its prefix: unchanged
    (b"/x?/v1", b"/v1", b"/x?/v1"),
    (b"http://h/v1/a?q", b"/v1", b"/a?q"),  # absolute-form becomes origin-form
    (b"http://h/v1", b"/v1", b"/"),
    (b"http://h/v2", b"/v1", b"http://h/v2"),
    (b"http://h", b"/", b"/"),
    (b"http://h?q", b"/", b"/?q"),
    (b"*", b"/", b"*"),
    (b"/", b"/", b"/"),
]


@pytest.mark.parametrize(("target", "prefix", "rewritten"), REWRITE_CASES)
def test_rewrite_target(target: bytes, prefix: bytes, rewritten: bytes) -> None:
    assert rewrite_target(target, prefix) == rewritten


# --- the route's action ----------------------------------------------------------------------


def test_pool_route() -> None:
    route = Route(
        3,
        RouteSpec(
            pool="api",
            strip_prefix="/v1",
            request_headers=HeaderEdits(set=(("X-Env", "prod"),), remove=("x-debug",)),
            response_headers=HeaderEdits(set=(("strict-transport-security", "max-age=1"),)),
        ),
    )
    assert (route.index, route.pool, route.status) == (3, "api", 0)
    assert route.local is None and route.local_keep_alive is None
    assert route.answer(keep_alive=True, head=False) is None
    assert route.strip_prefix == b"/v1"
    assert route.request_edits is not None
    assert route.request_edits.drop == {b"x-env", b"x-debug"}
    assert route.request_edits.add == b"X-Env: prod\r\n"
    assert route.response_edits is not None
    assert route.response_edits.add == b"strict-transport-security: max-age=1\r\n"


def test_no_edits_is_none() -> None:
    route = Route(0, RouteSpec(pool="a"))
    assert route.request_edits is None and route.response_edits is None
    assert route.strip_prefix is None


class _Response:
    """httptools callbacks: one parsed response."""

    def __init__(self) -> None:
        self.fields: Fields = []
        self.body = b""
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True

    def field(self, name: bytes) -> bytes | None:
        values = [v for n, v in self.fields if n == name]
        assert len(values) <= 1, f"{name!r} repeated"
        return values[0] if values else None


def parse(answer: bytes) -> tuple[int, _Response]:
    """An answer parsed as a client would parse it."""
    response = _Response()
    parser = httptools.HttpResponseParser(response)
    parser.feed_data(answer)
    assert response.complete
    return parser.get_status_code(), response


LOCAL_ROUTES = [
    RouteSpec(path="/old", redirect=Redirect(location="https://example.com/new", status=301)),
    RouteSpec(redirect=Redirect(location="/x?a=1&b=2")),
    RouteSpec(respond=Respond(status=200, body="User-agent: *\nDisallow: /\n")),
    RouteSpec(respond=Respond(status=503, body="down for maintenance\n")),
    RouteSpec(respond=Respond(status=404, body="")),
    RouteSpec(respond=Respond(status=200, body="héllo ✓", content_type="text/html")),
    RouteSpec(respond=Respond(status=204)),
    RouteSpec(
        respond=Respond(status=200, body="{}", content_type="application/json"),
        response_headers=HeaderEdits(set=(("Cache-Control", "no-store"), ("X-A", "1"))),
    ),
]


@pytest.mark.parametrize("spec", LOCAL_ROUTES)
def test_local_answers_are_valid_responses(spec: RouteSpec) -> None:
    route = Route(0, spec)
    assert route.pool is None
    assert route.local is not None and route.local_keep_alive is not None
    assert route.answer(keep_alive=False, head=False) == route.local
    assert route.answer(keep_alive=True, head=False) == route.local_keep_alive
    for keep_alive in (False, True):
        answer = route.local_keep_alive if keep_alive else route.local
        status, response = parse(answer)
        assert status == route.status
        assert response.field(b"connection") == (None if keep_alive else b"close")
        assert answer.startswith(b"HTTP/1.1 %d " % status)
        length = response.field(b"content-length")
        if status == 204:
            assert length is None and response.body == b""
        else:
            assert length is not None and int(length) == len(response.body)
        if spec.redirect is not None:
            assert 300 <= status <= 399 and response.body == b""
            assert response.field(b"location") == spec.redirect.location.encode()
        if spec.respond is not None and status != 204:
            assert response.body == spec.respond.body.encode()
            assert response.field(b"content-type") == spec.respond.content_type.encode()
        for name, value in spec.response_headers.set:
            assert response.field(name.lower().encode()) == value.encode()
        # HEAD: the same head, no body.
        head = route.answer(keep_alive=keep_alive, head=True)
        assert head is not None and answer.startswith(head) and head.endswith(b"\r\n\r\n")
        assert answer[len(head) :] == response.body


def test_redirect_head() -> None:
    route = Route(0, RouteSpec(redirect=Redirect(location="https://e.com/n", status=308)))
    assert route.local == (
        b"HTTP/1.1 308 Permanent Redirect\r\nLocation: https://e.com/n\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    assert route.local_keep_alive == (
        b"HTTP/1.1 308 Permanent Redirect\r\nLocation: https://e.com/n\r\nContent-Length: 0\r\n\r\n"
    )


def test_location_cannot_break_the_head() -> None:
    route = Route(0, RouteSpec(redirect=Redirect(location="/a\r\nSet-Cookie: x=1 é")))
    assert route.local is not None
    assert b"Location: /a%0D%0ASet-Cookie:%20x=1%20%C3%A9\r\n" in route.local


def test_response_headers_replace_and_remove_own_fields_but_never_framing() -> None:
    spec = RouteSpec(
        respond=Respond(body="ok"),
        response_headers=HeaderEdits(set=(("Content-Type", "text/html"),)),
    )
    _, response = parse(Route(0, spec).local or b"")
    assert response.field(b"content-type") == b"text/html"
    assert response.field(b"content-length") == b"2"
    assert response.field(b"connection") == b"close"
    # Framing is rota's: the loader refuses such an edit, and building one is an error too.
    for name in ("Content-Length", "Connection"):
        framing = RouteSpec(
            respond=Respond(body="ok"), response_headers=HeaderEdits(set=((name, "9"),))
        )
        with pytest.raises(ValueError, match="written by rota itself"):
            Route(0, framing)
    spec = RouteSpec(
        respond=Respond(body="ok"), response_headers=HeaderEdits(remove=("content-type",))
    )
    _, response = parse(Route(0, spec).local or b"")
    assert response.field(b"content-type") is None


@pytest.mark.parametrize(
    "spec",
    [
        RouteSpec(redirect=Redirect(location="/", status=200)),
        RouteSpec(respond=Respond(status=101)),
        RouteSpec(respond=Respond(status=600)),
        RouteSpec(respond=Respond(), response_headers=HeaderEdits(set=(("X-A", "a\r\nX-B: b"),))),
    ],
)
def test_impossible_local_answers_are_refused(spec: RouteSpec) -> None:
    with pytest.raises(ValueError):
        Route(0, spec)


# --- shadowed --------------------------------------------------------------------------------

SHADOW_CASES: list[tuple[list[RouteSpec], dict[int, int]]] = [
    ([RouteSpec(pool="a"), RouteSpec(pool="b", path="/x")], {1: 0}),
    ([RouteSpec(pool="a"), RouteSpec(pool="b")], {1: 0}),
    ([RouteSpec(pool="a", path="/x"), RouteSpec(pool="b", path="/x")], {1: 0}),
    ([RouteSpec(pool="a", path="/x"), RouteSpec(pool="b", path="/y")], {}),
    ([RouteSpec(pool="a", path="/x"), RouteSpec(pool="b", path_prefix="/x")], {}),
    ([RouteSpec(pool="a", path_prefix="/x"), RouteSpec(pool="b", path="/x/y")], {1: 0}),
    ([RouteSpec(pool="a", path_prefix="/x"), RouteSpec(pool="b", path_prefix="/xy")], {1: 0}),
    ([RouteSpec(pool="a", path_prefix="/xy"), RouteSpec(pool="b", path_prefix="/x")], {}),
    # hosts
    ([RouteSpec(pool="a", host="e.com"), RouteSpec(pool="b", host="e.com", path="/")], {1: 0}),
    ([RouteSpec(pool="a", host="e.com"), RouteSpec(pool="b", host="f.com")], {}),
    ([RouteSpec(pool="a", host="e.com"), RouteSpec(pool="b")], {}),
    ([RouteSpec(pool="a", path="/"), RouteSpec(pool="b", host="e.com", path="/")], {1: 0}),
    ([RouteSpec(pool="a", host="*.e.com"), RouteSpec(pool="b", host="a.e.com")], {1: 0}),
    ([RouteSpec(pool="a", host="*.e.com"), RouteSpec(pool="b", host="a.b.e.com")], {1: 0}),
    ([RouteSpec(pool="a", host="*.e.com"), RouteSpec(pool="b", host="*.b.e.com")], {1: 0}),
    ([RouteSpec(pool="a", host="*.e.com"), RouteSpec(pool="b", host="*.e.com")], {1: 0}),
    ([RouteSpec(pool="a", host="*.e.com"), RouteSpec(pool="b", host="e.com")], {}),
    ([RouteSpec(pool="a", host="*.b.e.com"), RouteSpec(pool="b", host="*.e.com")], {}),
    ([RouteSpec(pool="a", host="a.e.com"), RouteSpec(pool="b", host="*.e.com")], {}),
    # methods and headers
    (
        [RouteSpec(pool="a", methods=("GET", "POST")), RouteSpec(pool="b", methods=("GET",))],
        {1: 0},
    ),
    ([RouteSpec(pool="a", methods=("GET",)), RouteSpec(pool="b", methods=("GET", "PUT"))], {}),
    ([RouteSpec(pool="a", methods=("GET",)), RouteSpec(pool="b")], {}),
    (
        [
            RouteSpec(pool="a", headers=(("x-a", "1"),)),
            RouteSpec(pool="b", headers=(("x-a", "1"), ("x-b", "2"))),
        ],
        {1: 0},
    ),
    (
        [
            RouteSpec(pool="a", headers=(("x-a", "1"), ("x-b", "2"))),
            RouteSpec(pool="b", headers=(("x-a", "1"),)),
        ],
        {},
    ),
    ([RouteSpec(pool="a", headers=(("x-a", "1"),)), RouteSpec(pool="b")], {}),
    # all keys together, and the first earlier route that covers is named
    (
        [
            RouteSpec(pool="a", host="*.e.com", path_prefix="/api"),
            RouteSpec(pool="b", host="a.e.com", path_prefix="/api", methods=("GET",)),
            RouteSpec(
                pool="c",
                host="a.e.com",
                path="/api/v1",
                methods=("GET",),
                headers=(("x-a", "1"),),
            ),
        ],
        {1: 0, 2: 0},
    ),
    (
        [
            RouteSpec(pool="a", path="/x", methods=("GET",)),
            RouteSpec(pool="b", path="/x"),
            RouteSpec(pool="c", path="/x", methods=("GET",)),
        ],
        {2: 0},
    ),
]


@pytest.mark.parametrize(("routes", "expected"), SHADOW_CASES)
def test_shadowed(routes: list[RouteSpec], expected: dict[int, int]) -> None:
    assert shadowed(routes) == expected


def test_shadowed_reads_only_match_keys() -> None:
    routes = [
        RouteSpec(respond=Respond(status=42)),  # for the loader to refuse, not for shadowed
        RouteSpec(pool="a", path="/x"),
    ]
    assert shadowed(routes) == {1: 0}
