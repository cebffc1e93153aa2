"""The route table of an HTTP listener, compiled once at load: which route a request takes.

Pure, no I/O. `RouteTable(specs).match(method, target, host, fields)` returns the first
`Route` whose keys all match, or None (the caller answers 404). The rules:

- **Order**: routes are tried in order; the first that matches wins.
- **host**: compared case-insensitively with the request's Host (`host`, OWS-stripped and
  validated by `rota.http.rules`); a port is ignored (`example.com:8080`, `[::1]:8080`) and so
  is one trailing dot. `*.example.com` matches one or more labels before `.example.com`
  (`a.example.com`, `a.b.example.com`), never `example.com` itself. A request without Host
  (HTTP/1.0) only matches routes without `host`. For an absolute-form target the rules have
  already refused a Host that differs from the target's authority, so Host is the one name.
- **path** (exact) and **path_prefix** (a plain byte prefix) are compared with the path of
  the target, not percent-decoded: `/a/b?q` -> `/a/b`; `http://h/a?q` -> `/a`; `http://h` ->
  `/`; `*` -> `*`.
- **methods**: the request's method is one of them (methods are case-sensitive tokens,
  RFC 9110 9.1; the spec's are upper-case).
- **headers**: every listed name is present with exactly that value, the value OWS-trimmed;
  names compare case-insensitively, values case-sensitively; any one of repeated field lines
  may carry it.
- **strip_prefix** (`rewrite_target`): when the path starts with the prefix it is removed; an
  empty result becomes `/` and one not starting with `/` gets one (Traefik's StripPrefix); the
  query is kept (`/v1?x=1` -> `/?x=1`) and an absolute-form target becomes origin-form. When
  the path does not start with the prefix, or the target is `*`, it is left as it is.
- **Local answers** (`redirect`, `respond`) are prebuilt whole: `Route.local` closes the
  connection, `Route.local_keep_alive` does not; `Route.answer()` also has them for HEAD.

How it is fast (this runs once per request; issue 13's budget is 3% for one catch-all route
and 10% more for 50 routes): `RouteTable.only` lets the caller of a one-catch-all table skip
`match` altogether. Otherwise the Host picks a precomputed candidate list (exact hosts in a
dict, wildcard suffixes in a dict looked up per dot-suffix, host-less routes for any other
host), remembered per raw Host value in a bounded memo, so a request pays one dict lookup for
its Host; then each candidate's path, methods and headers are tested in that order (cheap
tests first), the path computed once, and only for a list where some route reads it. No
regex, no per-request scan of routes for other hosts. A long candidate list (`INDEX_FROM`)
is indexed by the first path segment, so fifty prefixes on one host are not fifty tests.

Measured (`python -m bench.routes --loop`, callgrind, instructions per call less an empty
call; compiled / pure Python): reading `table.only` ~0 from compiled code; one catch-all
through `match` 620 / 1,650; 50 routes of 25 hosts x 2 prefixes, the request taking the last
but one, 2,020 / 6,420; 50 host-less prefixes, the last taken, 3,630 / 7,860; no route
580 / 1,540. A whole keep-alive request is 49,440 (bench.icount).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from rota.config.model import RouteSpec
from rota.http.edits import FieldEdits, field_edits
from rota.http.headers import MEMO_LIMIT
from rota.http.local import local_answers

Fields = list[tuple[bytes, bytes]]

_OWS: Final = b" \t"
_SLASH: Final = 47  # "/"


class Route:
    """One route, prepared at load: its match keys as bytes and its action.

    For the caller: `index` (its place in the listener's routes), `spec`, `pool` (None for a
    local answer), `status` (of the local answer, 0 for a pool), `local` / `local_keep_alive`
    (the whole local answer, with and without `Connection: close`; `answer()` also has the
    HEAD variants), `request_edits` and `response_edits` (None when empty; a local answer
    already carries its response edits), `strip_prefix` (for `rewrite_target`).
    """

    __slots__ = (
        "answers",
        "any",
        "any_host",
        "headers",
        "host",
        "index",
        "local",
        "local_keep_alive",
        "methods",
        "path",
        "pool",
        "prefix",
        "request_edits",
        "response_edits",
        "spec",
        "status",
        "strip_prefix",
        "wildcard",
    )

    def __init__(self, index: int, spec: RouteSpec) -> None:
        self.index = index
        self.spec = spec
        self.pool: str | None = spec.pool
        # Match keys. `host` is an exact name, `wildcard` the suffix of `*.name` (".name").
        host = None if spec.host is None else _spec_host(spec.host)
        self.host: bytes | None = None
        self.wildcard: bytes | None = None
        if host is not None and host.startswith(b"*."):
            self.wildcard = host[1:]
        else:
            self.host = host
        self.any_host = host is None
        self.path: bytes | None = None if spec.path is None else spec.path.encode()
        self.prefix: bytes | None = None if spec.path_prefix is None else spec.path_prefix.encode()
        self.methods: frozenset[bytes] | None = (
            frozenset([m.encode("ascii") for m in spec.methods]) if spec.methods else None
        )
        self.headers: tuple[tuple[bytes, bytes], ...] = tuple(
            [
                (n.lower().encode("latin-1"), v.strip(" \t").encode("latin-1"))
                for n, v in spec.headers
            ]
        )
        # Once the host matched, nothing else is asked: the first test of the loop in match.
        self.any = (
            self.path is None and self.prefix is None and self.methods is None and not self.headers
        )
        # The action.
        self.strip_prefix: bytes | None = (
            None if spec.strip_prefix is None else spec.strip_prefix.encode()
        )
        self.request_edits: FieldEdits | None = field_edits(
            spec.request_headers.set, spec.request_headers.remove
        )
        self.response_edits: FieldEdits | None = field_edits(
            spec.response_headers.set, spec.response_headers.remove
        )
        self.status = 0
        self.local: bytes | None = None
        self.local_keep_alive: bytes | None = None
        # (close, keep-alive, close for HEAD, keep-alive for HEAD)
        self.answers: tuple[bytes, bytes, bytes, bytes] | None = None
        if spec.redirect is not None or spec.respond is not None:
            self.status, self.answers = local_answers(spec)
            self.local, self.local_keep_alive = self.answers[0], self.answers[1]

    def answer(self, keep_alive: bool, head: bool) -> bytes | None:
        """The local answer for a request that keeps the connection or not, HEAD or not
        (RFC 9110 9.3.2: the same head, no body); None for a route to a pool."""
        answers = self.answers
        if answers is None:
            return None
        return answers[(1 if keep_alive else 0) + (2 if head else 0)]

    def accepts_host(self, host: bytes | None) -> bool:
        """Whether the route's host key admits `host`, already normalised (`host_name`)."""
        if self.host is not None:
            return host == self.host
        wildcard = self.wildcard
        if wildcard is not None:
            return host is not None and len(host) > len(wildcard) and host.endswith(wildcard)
        return True

    def __repr__(self) -> str:
        target = self.pool if self.pool is not None else self.status
        return f"<Route {self.index} -> {target}>"


class RouteTable:
    """The routes of one listener, compiled for `match`."""

    __slots__ = ("_exact", "_hostless", "_memo", "_wild", "_wild_only", "only", "routes")

    def __init__(self, routes: Sequence[RouteSpec]) -> None:
        self.routes: tuple[Route, ...] = tuple([Route(i, spec) for i, spec in enumerate(routes)])
        # A first route that matches every request is the only one any request can take
        # (the loader refuses the unreachable rest): the caller reads this and skips match.
        self.only: Route | None = None
        if self.routes and self.routes[0].any and self.routes[0].any_host:
            self.only = self.routes[0]
        self._hostless = Candidates([r for r in self.routes if r.any_host])
        # Exact host -> candidates: its routes, the wildcard routes that cover it and the
        # host-less ones, in route order.
        self._exact: dict[bytes, Candidates] = {}
        for route in self.routes:
            name = route.host
            if name is not None and name not in self._exact:
                self._exact[name] = Candidates([r for r in self.routes if r.accepts_host(name)])
        # Wildcard suffix -> its routes with the host-less ones; and alone, for merging.
        self._wild: dict[bytes, Candidates] = {}
        self._wild_only: dict[bytes, tuple[Route, ...]] = {}
        for route in self.routes:
            suffix = route.wildcard
            if suffix is not None and suffix not in self._wild:
                self._wild[suffix] = Candidates(
                    [r for r in self.routes if r.wildcard == suffix or r.any_host]
                )
                self._wild_only[suffix] = tuple([r for r in self.routes if r.wildcard == suffix])
        # Raw Host value -> candidates. Bounded like rota.http.headers' memos: a server sees
        # a few Host values over and over; past the limit others are looked up every time.
        self._memo: dict[bytes, Candidates] = {}

    def match(
        self, method: bytes, target: bytes, host: bytes | None, fields: Fields
    ) -> Route | None:
        """The first route that matches the request, or None (see the module docstring)."""
        if host is None:
            candidates = self._hostless
        else:
            found = self._memo.get(host)
            if found is None:
                found = self._candidates(host)
                if len(self._memo) < MEMO_LIMIT:
                    self._memo[host] = found
            candidates = found
        routes = candidates.routes
        path = b""
        if candidates.paths:
            # The path, once, for every route that needs it: origin-form inline (nearly all
            # requests), the other forms through request_path.
            if target and target[0] == _SLASH:
                # find, not `b"?" in target`: bytes.__contains__ first tries its operand as
                # an int and swallows the TypeError, 2,000 instructions more (callgrind).
                query = target.find(b"?")
                path = target if query == -1 else target[:query]
            else:
                path = request_path(target)
            segments = candidates.segments
            if segments is not None:
                routes = segments.get(path_segment(path), candidates.unkeyed)
        for route in routes:
            if route.any:
                return route
            exact = route.path
            if exact is not None and path != exact:
                continue
            prefix = route.prefix
            if prefix is not None and not path.startswith(prefix):
                continue
            methods = route.methods
            if methods is not None and method not in methods:
                continue
            headers = route.headers
            if headers and not _has_fields(fields, headers):
                continue
            return route
        return None

    def _candidates(self, host: bytes) -> Candidates:
        """The routes a request with this Host value may take, in order."""
        name = host_name(host)
        found = self._exact.get(name)
        if found is not None:
            return found
        if not self._wild:
            return self._hostless
        suffixes: list[bytes] = []
        dot = name.find(b".", 1)
        while dot != -1:
            if name[dot:] in self._wild:
                suffixes.append(name[dot:])
            dot = name.find(b".", dot + 1)
        if not suffixes:
            return self._hostless
        if len(suffixes) == 1:
            return self._wild[suffixes[0]]
        # Several wildcards cover this name (*.example.com and *.b.example.com): rare, so the
        # merge is done here, then remembered with the rest by the caller's memo.
        chosen = {r.index for suffix in suffixes for r in self._wild_only[suffix]}
        return Candidates([r for r in self.routes if r.index in chosen or r.any_host])

    def __repr__(self) -> str:
        return f"<RouteTable {len(self.routes)} routes{' (one catch-all)' if self.only else ''}>"


# A candidate list this long or longer is indexed by the first segment of the path.
INDEX_FROM: Final = 6


class Candidates:
    """The routes one Host may take, in order, cut after the first that matches every
    request (the rest can never be reached through this list).

    A long list is also indexed by the first path segment: a route whose `path`, or whose
    `path_prefix` up to a second slash (`/api/`), fixes the segment (`api`) can only match
    requests with that segment, so `segments` maps each such segment to the routes that
    can match it (its own and the `unkeyed` ones, merged in route order). Fifty prefixes on
    one host then cost a lookup and a test or two, not fifty tests.
    """

    __slots__ = ("paths", "routes", "segments", "unkeyed")

    def __init__(self, routes: list[Route]) -> None:
        self.routes: tuple[Route, ...] = _cut(routes)
        # Some route reads the path: match computes it before the loop.
        self.paths = any(r.path is not None or r.prefix is not None for r in self.routes)
        self.segments: dict[bytes, tuple[Route, ...]] | None = None
        self.unkeyed: tuple[Route, ...] = self.routes
        if len(self.routes) < INDEX_FROM:
            return
        keyed = [(route, route_segment(route)) for route in self.routes]
        keys = {key for _, key in keyed if key is not None}
        if not keys:
            return
        self.segments = {key: tuple([r for r, k in keyed if k is None or k == key]) for key in keys}
        self.unkeyed = tuple([r for r, k in keyed if k is None])


def _cut(routes: list[Route]) -> tuple[Route, ...]:
    for i, route in enumerate(routes):
        if route.any:
            return tuple(routes[: i + 1])
    return tuple(routes)


def path_segment(path: bytes) -> bytes:
    """The first segment of a request path (`/api/x` -> `api`, `/` -> ``), or the whole of
    a path that does not start with a slash (`*`)."""
    if path and path[0] == _SLASH:
        end = path.find(b"/", 1)
        return path[1:] if end == -1 else path[1:end]
    return path


def route_segment(route: Route) -> bytes | None:
    """The first path segment of every request `route` can match, None when it is not fixed."""
    if route.path is not None:
        return path_segment(route.path)
    prefix = route.prefix
    if prefix is not None and prefix and prefix[0] == _SLASH:
        end = prefix.find(b"/", 1)
        if end != -1:
            return prefix[1:end]
    return None


def _spec_host(host: str) -> bytes:
    """A route's host as requests are normalised: no trailing dot, IPv6 in brackets."""
    name = host.lower().encode()
    if name.endswith(b"."):
        name = name[:-1]
    if b":" in name and not name.startswith(b"["):
        name = b"[" + name + b"]"
    return name


def host_name(host: bytes) -> bytes:
    """A Host value as routes compare it: lower-case, without port or one trailing dot."""
    name = host.lower()
    if name.startswith(b"["):
        end = name.find(b"]")
        if end != -1:
            name = name[: end + 1]
    else:
        colon = name.find(b":")
        if colon != -1:
            name = name[:colon]
    if name.endswith(b"."):
        name = name[:-1]
    return name


def request_path(target: bytes) -> bytes:
    """The path of a request target, not decoded: `/a?q` -> `/a`, `http://h/a?q` -> `/a`,
    `http://h` -> `/`, `*` -> `*` (RFC 9112 3.2)."""
    if target and target[0] == _SLASH:
        query = target.find(b"?")
        return target if query == -1 else target[:query]
    scheme = target.find(b"://")
    if scheme == -1:
        return target
    start, end = _path_span(target, scheme + 3)
    return target[start:end] if start < end else b"/"


def _path_span(target: bytes, authority: int) -> tuple[int, int]:
    """Where the path of an absolute-form target starts and ends; start == end when it has
    none (`http://h`, `http://h?q`)."""
    query = target.find(b"?", authority)
    end = len(target) if query == -1 else query
    slash = target.find(b"/", authority, end)
    return (end, end) if slash == -1 else (slash, end)


def rewrite_target(target: bytes, prefix: bytes) -> bytes:
    """`strip_prefix` on a request target (see the module docstring)."""
    if target and target[0] == _SLASH:
        start = 0
        query = target.find(b"?")
        end = len(target) if query == -1 else query
    else:
        scheme = target.find(b"://")
        if scheme == -1:
            return target
        start, end = _path_span(target, scheme + 3)
    path = target[start:end] if start < end else b"/"
    if not path.startswith(prefix):
        return target
    rest = path[len(prefix) :]
    if not rest or rest[0] != _SLASH:
        rest = b"/" + rest
    return rest + target[end:]


def _has_fields(fields: Fields, wanted: tuple[tuple[bytes, bytes], ...]) -> bool:
    """Every (lower-case name, value) of `wanted` is among the request's fields."""
    for name, value in wanted:
        n = len(name)
        found = False
        for fname, fvalue in fields:
            # Lengths first: most fields are told apart without lower-casing a name.
            # llhttp strips a value's leading OWS, not its trailing.
            if (
                len(fname) == n
                and (fname == name or fname.lower() == name)
                and (fvalue == value or fvalue.strip(_OWS) == value)
            ):
                found = True
                break
        if not found:
            return False
    return True


def shadowed(routes: Sequence[RouteSpec]) -> dict[int, int]:
    """For the config loader: route index -> the index of the first earlier route that
    matches every request the later one matches, so the later one can never be taken.

    Conservative: it finds an earlier catch-all, an earlier route with the same keys, and an
    earlier route each of whose keys is absent or at least as wide (the same host, a wildcard
    covering it, or none; a path prefix that starts the later path or prefix; a superset of
    methods; a subset of headers). Routes that are shadowed only by several earlier ones
    together are not reported.
    """
    # Only the match keys: an action the loader has yet to refuse must not stop this.
    prepared = [
        Route(
            i,
            RouteSpec(
                host=spec.host,
                path=spec.path,
                path_prefix=spec.path_prefix,
                methods=spec.methods,
                headers=spec.headers,
            ),
        )
        for i, spec in enumerate(routes)
    ]
    found: dict[int, int] = {}
    for later in prepared:
        for earlier in prepared[: later.index]:
            if _covers(earlier, later):
                found[later.index] = earlier.index
                break
    return found


def _covers(a: Route, b: Route) -> bool:
    """Every request `b` matches, `a` matches too (sufficient, not necessary)."""
    if not a.any_host:
        if a.host is not None:
            if b.host != a.host:
                return False
        else:
            wildcard = a.wildcard
            name = b.host if b.host is not None else b.wildcard
            # `*.x` covers `a.x`, `*.x` and `*.a.x` (b's wildcard suffix ends with a's).
            if wildcard is None or name is None or not name.endswith(wildcard):
                return False
            if b.host is not None and len(name) <= len(wildcard):
                return False
    if a.path is not None and b.path != a.path:
        return False
    if a.prefix is not None and not (
        (b.path is not None and b.path.startswith(a.prefix))
        or (b.prefix is not None and b.prefix.startswith(a.prefix))
    ):
        return False
    if a.methods is not None and (b.methods is None or not b.methods <= a.methods):
        return False
    return set(a.headers) <= set(b.headers)
