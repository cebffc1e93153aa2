"""Consistent hashing on a request key, with bounded load.

**The key** (`PoolSpec.hash_key`): `client_ip`, `header:NAME` (the first such field,
case-insensitive name), `cookie:NAME`, `path` (the target before any `?`) or `query:NAME`
(the raw value of that query parameter, not percent-decoded). A request without the key
(the field or parameter absent or empty; any key but `client_ip` in a TCP listener) is
balanced by round robin among the same servers, as HAProxy does for `balance hdr()` and
`url_param`: sending every key-less request to one fixed key's server would pile them all on
it.

**The ring** (Karger et al.; ketama, as in nginx's `hash ... consistent` and HAProxy's
`hash-type consistent`): each server puts `POINTS_PER_WEIGHT * weight` points on a 32-bit
circle, at hashes of its id (never its position or address, so reordering servers or moving
one to a new address keeps its keys, and every worker builds the same ring). A key goes to
the first point at or after its hash, walking on past servers that are down or tried. A ring
rather than Maglev because it keeps the promise exactly: when a server goes down *or is
removed*, only the keys it held move, and a server joining takes only its own keys (its
share, about 1/N) from the others. Maglev's table (Eisenbud et al., 2016) balances better
but is rebuilt on every change, which moves a few other keys too ("minimal", not zero,
disruption); bounded load below corrects the ring's imbalance where it matters.

**Bounded load** (`hash_balance_factor` > 0; Mirrokni, Thorup and Zadimoghaddam,
"Consistent Hashing with Bounded Loads", 2016, as in HAProxy's `hash-balance-factor` and
Envoy's): a server may hold at most `ceil(factor * (in_flight + 1) * weight / total_weight)`
requests in flight, counting the one being placed, over the usable servers; a key whose
server is full walks on along the ring to the next one with room. The factor is a multiple
of the average: 1.25 lets a server take 25% more than its share (HAProxy writes 125). Should
every server be full (a factor below 1), the key's own server takes it anyway.

Slow start does not apply: re-weighing the ring during a ramp would move keys back and forth.
The key is hashed with CRC-32 (zlib's, in C; nginx's ketama uses it too) and an integer
mixer to spread its bits; points use BLAKE2b, computed once per membership change. A key
finds its point through a table of the ring's 2**bits buckets (the first point of each)
rather than a bisection: one or two comparisons instead of a dozen on Python integers.
"""

from __future__ import annotations

from collections.abc import Container
from hashlib import blake2b
from math import ceil
from typing import TYPE_CHECKING, Final
from zlib import crc32

from rota.balancing.round_robin import RoundRobin
from rota.balancing.tiers import Tiered
from rota.pool import Backend

if TYPE_CHECKING:
    from rota.http.head import RequestHead

POINTS_PER_WEIGHT: Final = 160  # ketama's (and nginx's) points per unit of weight
# Past this many points the ring is thinned evenly (fewer points per weight) so that building
# it stays fast with large weights; below it the points per weight never change.
MAX_POINTS: Final = 160 * 1024
MAX_LOOKUP_BITS: Final = 16
MIXER: Final = 0x45D9F3B

CLIENT_IP: Final = 0
HEADER: Final = 1
COOKIE: Final = 2
PATH: Final = 3
QUERY: Final = 4
_KINDS: Final = {"header": HEADER, "cookie": COOKIE, "query": QUERY}
_OWS: Final = b" \t"


def parse_key(text: str) -> tuple[int, bytes]:
    """`hash_key` as (kind, name); ValueError naming what is wrong (for the loader too)."""
    if text == "client_ip":
        return CLIENT_IP, b""
    if text == "path":
        return PATH, b""
    kind, colon, name = text.partition(":")
    if not colon or kind not in _KINDS:
        raise ValueError(
            f"hash key {text!r}: expected client_ip, path, header:NAME, cookie:NAME or query:NAME"
        )
    if not name:
        raise ValueError(f"hash key {text!r}: {kind} needs a name after the colon")
    code = _KINDS[kind]
    return code, (name.lower() if code == HEADER else name).encode()


def _times(h: int) -> int:
    """(h * MIXER) mod 2**32 for a 32-bit h, in 16-bit halves: compiled, a product of
    operands under 2**30 stays a machine integer (mypyc's test is conservative), and a
    32 x 26-bit one would go through Python's big integers, ten times slower."""
    return ((h & 0xFFFF) * MIXER + (((h >> 16) * (MIXER & 0xFFFF)) << 16)) & 0xFFFFFFFF


def mix(h: int) -> int:
    """Spread a 32-bit hash's bits: Thomas Mueller's integer hash ("lowbias32"-like, from
    hash-prospector's measurements); every input bit affects every output bit."""
    h = _times((h >> 16) ^ h)
    h = _times((h >> 16) ^ h)
    return (h >> 16) ^ h


def key_hash(key: bytes) -> int:
    return mix(crc32(key))


def _point(seed: bytes, i: int) -> int:
    return int.from_bytes(blake2b(b"%b-%d" % (seed, i), digest_size=4).digest(), "big")


def build_ring(tier: tuple[Backend, ...]) -> tuple[list[int], list[int]]:
    """The ring's sorted points and, for each, the index of its server in `tier`."""
    total = sum(max(backend.weight, 0) for backend in tier)
    per = POINTS_PER_WEIGHT
    if total * per > MAX_POINTS:
        per = max(1, MAX_POINTS // total)
    placed: list[tuple[int, str, int]] = []
    for index, backend in enumerate(tier):
        seed = backend.id.encode()
        for i in range(max(backend.weight, 0) * per):
            placed.append((_point(seed, i), backend.id, index))
    placed.sort()
    return [p[0] for p in placed], [p[2] for p in placed]


def build_lookup(points: list[int]) -> tuple[list[int], int]:
    """For each of 2**bits equal arcs of the circle, the index of its first point at or
    after the arc's start; and the shift from a 32-bit hash to its arc. About one point per
    four arcs (at most 2**16 arcs), so a lookup scans one point or two."""
    bits = min(MAX_LOOKUP_BITS, max(4, (4 * len(points)).bit_length()))
    shift = 32 - bits
    table: list[int] = []
    i = 0
    count = len(points)
    for arc in range(1 << bits):
        start = arc << shift
        while i < count and points[i] < start:
            i += 1
        table.append(i)
    return table, shift


def _field(fields: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    size = len(name)
    for field_name, value in fields:
        if len(field_name) == size and field_name.lower() == name:
            value = value.strip(_OWS)
            return value or None
    return None


def _cookie(fields: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    # RFC 6265 5.4: `name=value` pairs separated by "; ", possibly over several fields.
    for field_name, value in fields:
        if len(field_name) == 6 and field_name.lower() == b"cookie":
            for pair in value.split(b";"):
                key, eq, found = pair.strip(_OWS).partition(b"=")
                if eq and key == name:
                    return found or None
    return None


def _query(target: bytes, name: bytes) -> bytes | None:
    _, mark, query = target.partition(b"?")
    if not mark:
        return None
    for pair in query.split(b"&"):
        key, eq, found = pair.partition(b"=")
        if eq and key == name:
            return found or None
    return None


class ConsistentHash(Tiered):
    __slots__ = (
        "_fallback",
        "_kind",
        "_lookup",
        "_name",
        "_owners",
        "_points",
        "_ring_of",
        "_shift",
        "factor",
        "key",
    )

    def __init__(self, key: str, factor: float = 0.0) -> None:
        self._kind, self._name = parse_key(key)
        self.key = key
        self.factor = factor
        self._points: list[int] = []
        self._owners: list[int] = []
        self._lookup: list[int] = [0]
        self._shift = 32
        self._ring_of: list[tuple[str, int]] = []  # what the ring was built from
        self._fallback = RoundRobin()
        super().__init__()

    def _spawn(self) -> Tiered:
        return ConsistentHash(self.key, self.factor)

    def assign(self, tier: tuple[Backend, ...]) -> None:
        # `update` comes on every up/down flip too; the ring changes only with membership
        # or weights (a server that is down is walked past, so its keys alone move).
        built_from = [(backend.id, backend.weight) for backend in tier]
        if built_from != self._ring_of:
            self._points, self._owners = build_ring(tier)
            self._lookup, self._shift = build_lookup(self._points)
            self._ring_of = built_from
        self._fallback.assign(tier)
        super().assign(tier)

    def key_of(self, head: RequestHead | None, client_ip: bytes) -> bytes | None:
        """The request's key, or None when it has none."""
        kind = self._kind
        if kind == CLIENT_IP:
            return client_ip or None
        if head is None:
            return None
        if kind == HEADER:
            return _field(head.fields, self._name)
        if kind == COOKIE:
            return _cookie(head.fields, self._name)
        if kind == PATH:
            return head.target.partition(b"?")[0]
        return _query(head.target, self._name)

    def choose(
        self, tried: Container[Backend], head: RequestHead | None, client_ip: bytes
    ) -> Backend | None:
        key = self.key_of(head, client_ip)
        if key is None:
            return self._fallback.choose(tried, head, client_ip)
        return self.locate(key_hash(key), tried)

    def locate(self, h: int, tried: Container[Backend]) -> Backend | None:
        """The server for hash `h`: its point's, or the next usable one with room."""
        points = self._points
        count = len(points)
        if count == 0:
            return None
        i = self._lookup[h >> self._shift]
        while i < count and points[i] < h:
            i += 1
        if i == count:
            i = 0
        backend = self._tier[self._owners[i]]
        room = 0.0  # requests in flight allowed per unit of weight; 0.0: unbounded
        if self.factor > 0.0:
            room = self._room(tried)
            if room < 0.0:
                return None
        if (
            backend.up
            and backend not in tried
            and (room == 0.0 or backend.active < ceil(room * backend.weight))
        ):
            return backend
        return self._walk(i, tried, room)

    def _room(self, tried: Container[Backend]) -> float:
        """Bounded load's capacity per unit of weight over the usable servers, counting the
        request being placed; -1.0 when none is usable."""
        in_flight = 0
        total_weight = 0
        for backend in self._tier:
            if backend.up and backend not in tried:
                in_flight += backend.active
                total_weight += backend.weight
        if total_weight <= 0:
            return -1.0
        return self.factor * (in_flight + 1) / total_weight

    def _walk(self, i: int, tried: Container[Backend], room: float) -> Backend | None:
        """On along the ring from point `i`, each server once: the first usable one with
        room, else the first usable one, else None."""
        backends = self._tier
        owners = self._owners
        count = len(owners)
        seen: set[int] = set()
        first: Backend | None = None
        for _ in range(count):
            index = owners[i]
            if index not in seen:
                seen.add(index)
                backend = backends[index]
                if backend.up and backend not in tried:
                    if room == 0.0 or backend.active < ceil(room * backend.weight):
                        return backend
                    if first is None:
                        first = backend
                if len(seen) == len(backends):
                    break
            i += 1
            if i == count:
                i = 0
        return first
