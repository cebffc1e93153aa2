"""Properties of the built-in policies over random pools, states and request sequences."""

from __future__ import annotations

import random
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from rota.balancing import P2C, ConsistentHash, First, LeastRequests, RoundRobin, WeightedRandom
from rota.balancing.hash import build_lookup, key_hash, mix
from rota.balancing.tiers import Tiered
from rota.config.model import BackendSpec
from rota.pool import Backend, Pool, State

MAKERS: list[Callable[[], Tiered]] = [
    RoundRobin,
    LeastRequests,
    lambda: P2C(rng=random.Random(0)),
    lambda: WeightedRandom(rng=random.Random(0)),
    lambda: ConsistentHash("client_ip"),
    lambda: ConsistentHash("client_ip", 1.5),
    First,
]

server = st.tuples(
    st.integers(1, 5),  # weight
    st.booleans(),  # backup
    st.booleans(),  # up
    st.integers(0, 4),  # in flight
)


def build(make: Callable[[], Tiered], servers: list[tuple[int, bool, bool, int]]) -> Pool:
    pool = Pool(
        [
            BackendSpec(f"s{i}", "127.0.0.1", 7000 + i, weight=w, backup=backup)
            for i, (w, backup, _, _) in enumerate(servers)
        ],
        policy=make(),
    )
    for backend, (_, _, up, active) in zip(pool.backends, servers, strict=True):
        backend.active = active
        if not up:
            pool.set_state(backend, State.DOWN)
    return pool


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(range(len(MAKERS))),
    st.lists(server, min_size=1, max_size=6),
    st.sets(st.integers(0, 5)),
    st.binary(min_size=1, max_size=8),
)
def test_a_pick_is_up_untried_and_in_the_right_tier(
    which: int, servers: list[tuple[int, bool, bool, int]], tried_at: set[int], ip: bytes
) -> None:
    pool = build(MAKERS[which], servers)
    tried = [b for i, b in enumerate(pool.backends) if i in tried_at]
    primaries = [b for b in pool.backends if not b.backup]
    tier = primaries if any(b.up for b in primaries) else [b for b in pool.backends if b.backup]
    usable = [b for b in tier if b.up and b not in tried]
    for _ in range(3):
        chosen = pool.policy.pick(tried, None, ip)
        if usable:
            assert chosen in usable
        else:
            assert chosen is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=6))
def test_smooth_round_robin_gives_exact_shares_every_cycle(weights: list[int]) -> None:
    pool = Pool(
        [BackendSpec(f"s{i}", "127.0.0.1", 7000 + i, weight=w) for i, w in enumerate(weights)],
        policy=RoundRobin(),
    )
    cycle = sum(weights)
    for _ in range(3):
        counts: Counter[Backend] = Counter()
        for _ in range(cycle):
            chosen = pool.policy.pick((), None, b"")
            assert chosen is not None
            counts[chosen] += 1
        assert [counts[b] for b in pool.backends] == weights


def owners(policy: ConsistentHash, keys: list[bytes]) -> list[str | None]:
    out: list[str | None] = []
    for key in keys:
        found = policy.locate(key_hash(key), ())
        out.append(found.id if found is not None else None)
    return out


KEYS = [b"k%d" % i for i in range(3000)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=2, max_size=8), st.data())
def test_hash_moves_only_the_keys_of_a_server_that_leaves_or_joins(
    weights: list[int], data: st.DataObject
) -> None:
    pool = Pool(
        [BackendSpec(f"s{i}", "127.0.0.1", 7000 + i, weight=w) for i, w in enumerate(weights)],
        policy=ConsistentHash("client_ip"),
    )
    policy = pool.policy
    assert isinstance(policy, ConsistentHash)
    before = owners(policy, KEYS)
    gone = f"s{data.draw(st.integers(0, len(weights) - 1))}"
    pool.remove(gone)
    after = owners(policy, KEYS)
    assert all(a == b for a, b in zip(before, after, strict=True) if a != gone)
    pool.add(BackendSpec("new", "127.0.0.1", 7999, weight=data.draw(st.integers(1, 4))))
    joined = owners(policy, KEYS)
    assert all(b in (a, "new") for a, b in zip(after, joined, strict=True))


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 6),
    st.floats(1.1, 2.0),
    st.lists(st.tuples(st.integers(0, 20), st.booleans()), min_size=1, max_size=300),
)
def test_hash_bounded_load_never_exceeds_the_bound(
    n: int, factor: float, steps: list[tuple[int, bool]]
) -> None:
    pool = Pool(
        [BackendSpec(f"s{i}", "127.0.0.1", 7000 + i) for i in range(n)],
        policy=ConsistentHash("client_ip", factor),
    )
    in_flight: list[Backend] = []
    for key, finish in steps:
        if finish and in_flight:
            in_flight.pop(key % len(in_flight)).active -= 1
            continue
        total = sum(b.active for b in pool.backends) + 1
        chosen = pool.policy.pick((), None, b"%d" % key)
        assert chosen is not None
        chosen.active += 1
        in_flight.append(chosen)
        # Mirrokni et al.: a server takes a request only below ceil(factor * average).
        assert chosen.active <= -(-factor * total // n)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), max_size=200), st.integers(0, 2**32 - 1))
def test_hash_lookup_table_agrees_with_a_bisection(points: list[int], h: int) -> None:
    points.sort()
    table, shift = build_lookup(points)
    i = table[h >> shift]
    while i < len(points) and points[i] < h:
        i += 1
    assert i == bisect_left(points, h)


@given(st.integers(0, 2**32 - 1))
def test_mix_is_the_32_bit_integer_hash(h: int) -> None:
    x = ((h >> 16) ^ h) * 0x45D9F3B % 2**32
    x = ((x >> 16) ^ x) * 0x45D9F3B % 2**32
    assert mix(h) == (x >> 16) ^ x
