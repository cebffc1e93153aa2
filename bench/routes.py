"""What choosing a route costs per request, with timeit: `python -m bench.routes`.

    one catch-all      the seed's table: the caller reads `table.only` (and match, for scale)
    50 routes          25 hosts x 2 path prefixes; the request takes the last but one
    50 host-less       50 path prefixes on no host, the request takes the last (the worst
                       case of the design: one candidate list scanned in order)
    no route           a Host no route names, against the 50 routes: the 404 path

Nanoseconds per call, the best of several repeats. Compiled or pure Python as rota.native
decides (ROTA_PURE_PYTHON=1 for pure Python); the line at the top says which. Time on a
shared machine is noisy; instructions are not. `--loop CASE -n N` only makes the calls, so
that instructions per call are the difference of two callgrind runs over the difference in N
(as bench.icount does for whole requests):

    valgrind --tool=callgrind python -m bench.routes --loop many -n 1000
    valgrind --tool=callgrind python -m bench.routes --loop many -n 11000
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable

from bench.machine import require_current_build
from rota.config.model import RouteSpec
from rota.http import routing
from rota.http.routing import RouteTable

FIELDS = [
    (b"Host", b"h24.example.com"),
    (b"User-Agent", b"wrk"),
    (b"Accept", b"*/*"),
    (b"Accept-Encoding", b"gzip"),
]


def hosts_and_prefixes() -> RouteTable:
    return RouteTable(
        [
            RouteSpec(pool=f"p{i}", host=f"h{i}.example.com", path_prefix=prefix)
            for i in range(25)
            for prefix in ("/api/", "/static/")
        ]
    )


def hostless_prefixes() -> RouteTable:
    return RouteTable([RouteSpec(pool=f"p{i}", path_prefix=f"/s{i}/") for i in range(50)])


def timed(call: Callable[[], object], number: int, repeat: int) -> float:
    """ns per call, the best of `repeat` runs (the least disturbed by the machine)."""
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e9


def cases() -> dict[str, Callable[[], object]]:
    """name -> one call; checked first to take the route each case says it takes."""
    one = RouteTable([RouteSpec(pool="default")])
    many = hosts_and_prefixes()
    flat = hostless_prefixes()
    last = many.match(b"GET", b"/static/app.js?v=3", b"h24.example.com", FIELDS)
    if last is None or last.index != 49:
        raise SystemExit(f"bench.routes: the request took {last}, not route 49")
    flat_last = flat.match(b"GET", b"/s49/x", b"h.example.com", FIELDS)
    if flat_last is None or flat_last.index != 49:
        raise SystemExit(f"bench.routes: the request took {flat_last}, not route 49")
    return {
        "only": lambda: one.only,
        "one": lambda: one.match(b"GET", b"/", b"h24.example.com", FIELDS),
        "many": lambda: many.match(b"GET", b"/static/app.js?v=3", b"h24.example.com", FIELDS),
        "flat": lambda: flat.match(b"GET", b"/s49/x", b"h.example.com", FIELDS),
        "404": lambda: many.match(b"GET", b"/", b"other.example.com", FIELDS),
        "empty": lambda: None,
    }


LABELS = {
    "only": "one catch-all: table.only",
    "one": "one catch-all: match",
    "many": "50 routes (25 hosts x 2 prefixes)",
    "flat": "50 host-less prefixes",
    "404": "no route (404)",
    "empty": "(an empty lambda, for scale)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200_000, help="calls per repeat")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--loop",
        choices=sorted(LABELS),
        help="only call this case n times, untimed (for callgrind: see the docstring)",
    )
    args = parser.parse_args()
    require_current_build("bench.routes")
    calls = cases()
    if args.loop is not None:
        call = calls[args.loop]
        for _ in range(args.n):
            call()
        return
    compiled = not routing.__file__.endswith(".py")
    print(f"rota.http.routing: {'compiled (mypyc)' if compiled else 'pure Python'}")
    for name, call in calls.items():
        print(f"{LABELS[name]:36} {timed(call, args.n, args.repeat):8.1f} ns")


if __name__ == "__main__":
    main()
