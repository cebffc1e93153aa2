"""Property tests: the compiled route table takes the route a plain first-match scan takes.

The scan below is written from the rules in rota.http.routing's docstring with the
standard library (urllib for paths), sharing no code with the table.
"""

from __future__ import annotations

from typing import TypeVar
from urllib.parse import urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from rota.config.model import RouteSpec
from rota.http.routing import RouteTable, rewrite_target, shadowed

Fields = list[tuple[bytes, bytes]]
T = TypeVar("T")

# --- the obviously correct scan --------------------------------------------------------------


def _name(host: bytes) -> str:
    name = host.decode("latin-1").lower()
    name = name[: name.index("]") + 1] if name.startswith("[") else name.split(":")[0]
    return name[:-1] if name.endswith(".") else name


def _path(target: bytes) -> bytes:
    if target == b"*":
        return target
    if target.startswith(b"/"):
        return target.split(b"?")[0]
    return urlsplit(target).path or b"/"


def matches(
    spec: RouteSpec, method: bytes, target: bytes, host: bytes | None, fields: Fields
) -> bool:
    if spec.host is not None:
        if host is None:
            return False
        name = _name(host)
        if spec.host.startswith("*."):
            if not (name.endswith(spec.host[1:]) and len(name) > len(spec.host) - 1):
                return False
        elif name != spec.host:
            return False
    path = _path(target)
    if spec.path is not None and path != spec.path.encode():
        return False
    if spec.path_prefix is not None and not path.startswith(spec.path_prefix.encode()):
        return False
    if spec.methods and method.decode() not in spec.methods:
        return False
    for want_name, want_value in spec.headers:
        if not any(
            n.decode().lower() == want_name and v.strip(b" \t").decode() == want_value
            for n, v in fields
        ):
            return False
    return True


def scan(
    routes: list[RouteSpec], method: bytes, target: bytes, host: bytes | None, fields: Fields
) -> int | None:
    for i, spec in enumerate(routes):
        if matches(spec, method, target, host, fields):
            return i
    return None


# --- random routes and requests --------------------------------------------------------------

NAMES = ["a.com", "b.a.com", "c.b.a.com", "x.c.b.a.com", "a.org", "com", "[::1]", "127.0.0.1"]
ROUTE_HOSTS = [None, None, None, None, "*.a.com", "*.b.a.com", "*.com", *NAMES]
PATHS = ["/", "/a", "/a/", "/a/b", "/ab", "/b", "*"]
METHODS = ["GET", "POST", "PUT"]
HEADERS = [("x-a", "1"), ("x-a", "2"), ("x-b", "1")]


def _sometimes(keys: st.SearchStrategy[T]) -> st.SearchStrategy[T | None]:
    """A match key in one route of three, so that requests match some routes often."""
    return st.sampled_from([True, False, False]).flatmap(
        lambda present: keys if present else st.none()
    )


routes_st = st.lists(
    st.builds(
        RouteSpec,
        pool=st.just("p"),
        host=st.sampled_from(ROUTE_HOSTS),
        path=_sometimes(st.sampled_from(PATHS)),
        path_prefix=_sometimes(st.sampled_from(["", *PATHS])),
        methods=_sometimes(st.lists(st.sampled_from(METHODS), min_size=1, unique=True)).map(
            lambda m: tuple(m or ())
        ),
        headers=_sometimes(st.lists(st.sampled_from(HEADERS), min_size=1, unique=True)).map(
            lambda h: tuple(h or ())
        ),
    ),
    max_size=12,
)


@st.composite
def hosts(draw: st.DrawFn) -> bytes | None:
    if draw(st.integers(0, 5)) == 0:
        return None
    name = draw(st.sampled_from([*NAMES, "x.a.com", "b.com", "", "a.com.evil"]))
    name = "".join(c.upper() if draw(st.booleans()) else c for c in name)
    if name and not name.endswith("]") and draw(st.booleans()):
        name += "."
    if draw(st.booleans()):
        name += draw(st.sampled_from([":80", ":8080", ":"]))
    return name.encode()


@st.composite
def targets(draw: st.DrawFn) -> bytes:
    path = draw(st.sampled_from(["/", "/a", "/a/", "/a/b", "/ab", "/b", "/b/a", "/abc"]))
    query = draw(st.sampled_from(["", "?", "?q=1", "?/a", "?x=/b"]))
    form = draw(st.sampled_from(["origin", "origin", "absolute", "asterisk"]))
    if form == "asterisk":
        return b"*"
    if form == "absolute":
        path = draw(st.sampled_from([path, ""]))
        return f"http://a.com{path}{query}".encode()
    return f"{path}{query}".encode()


fields_st = st.lists(
    st.tuples(
        st.sampled_from([b"X-A", b"x-a", b"X-B", b"x-b", b"X-C", b"Host"]),
        st.sampled_from([b"1", b"2", b"1 ", b" 1\t", b"", b"11"]),
    ),
    max_size=5,
)
methods_st = st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"get"])


@settings(max_examples=700, deadline=None)
@given(routes_st, st.lists(st.tuples(methods_st, targets(), hosts(), fields_st), max_size=8))
def test_table_is_a_first_match_scan(
    routes: list[RouteSpec], requests: list[tuple[bytes, bytes, bytes | None, Fields]]
) -> None:
    table = RouteTable(routes)
    for method, target, host, fields in requests * 2:  # twice: once more through the memo
        route = table.match(method, target, host, fields)
        assert (None if route is None else route.index) == scan(
            routes, method, target, host, fields
        )
        if table.only is not None:
            assert route is table.only


@settings(max_examples=400, deadline=None)
@given(routes_st, st.lists(st.tuples(methods_st, targets(), hosts(), fields_st), max_size=8))
def test_a_shadowed_route_is_never_taken_alone(
    routes: list[RouteSpec], requests: list[tuple[bytes, bytes, bytes | None, Fields]]
) -> None:
    for later, earlier in shadowed(routes).items():
        assert earlier < later
        for method, target, host, fields in requests:
            if matches(routes[later], method, target, host, fields):
                assert matches(routes[earlier], method, target, host, fields)


@settings(max_examples=1000, deadline=None)
@given(targets(), st.sampled_from(["/", "/a", "/a/", "/ab", "/b", ""]))
def test_rewrite_target(target: bytes, prefix: str) -> None:
    raw = prefix.encode()
    rewritten = rewrite_target(target, raw)
    path = _path(target)
    if target == b"*" or not path.startswith(raw):  # asterisk-form is never rewritten
        assert rewritten == target
        return
    rest = path[len(raw) :]
    assert rewritten.startswith(b"/")
    assert _path(rewritten) == (rest if rest.startswith(b"/") else b"/" + rest)
    assert urlsplit(rewritten).query == urlsplit(target).query


# Long enough that the candidate lists are indexed by the first path segment, with routes
# the index cannot key (no path, a prefix without a second slash, a path that is not one)
# between the keyed ones.
LONG_ROUTES = [
    RouteSpec(pool="p", path_prefix="/a/", methods=("POST",)),
    RouteSpec(pool="p", path="/b"),
    RouteSpec(pool="p", headers=(("x-a", "1"),)),
    RouteSpec(pool="p", path_prefix="/a/b", host="*.a.com"),
    RouteSpec(pool="p", path_prefix="/ab"),
    RouteSpec(pool="p", path="*"),
    RouteSpec(pool="p", path="/"),
    RouteSpec(pool="p", path_prefix="/b/", host="b.a.com"),
    RouteSpec(pool="p", path_prefix="/a/"),
    RouteSpec(pool="p", path_prefix=""),
    RouteSpec(pool="p", methods=("PUT",)),
    RouteSpec(pool="p", path_prefix="/b/"),
]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(methods_st, targets(), hosts(), fields_st), min_size=1, max_size=8))
def test_indexed_table_is_a_first_match_scan(
    requests: list[tuple[bytes, bytes, bytes | None, Fields]],
) -> None:
    for n in range(len(LONG_ROUTES) + 1):
        routes = LONG_ROUTES[n:]
        table = RouteTable(routes)
        for method, target, host, fields in requests:
            route = table.match(method, target, host, fields)
            assert (None if route is None else route.index) == scan(
                routes, method, target, host, fields
            )


def test_long_tables_are_indexed() -> None:
    table = RouteTable(LONG_ROUTES)
    assert table._hostless.segments is not None
    assert set(table._hostless.segments) == {b"a", b"b", b"*", b""}
