"""The built-in balancing policies over a real `Pool`, with an injected clock and random source."""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import replace

import pytest

from rota.balancing import (
    P2C,
    POLICIES,
    ConsistentHash,
    First,
    LeastRequests,
    Policy,
    RoundRobin,
    WeightedRandom,
)
from rota.balancing.hash import key_hash, parse_key
from rota.balancing.tiers import MIN_SHARE, Tiered
from rota.config.model import BackendSpec, PoolSpec
from rota.http.head import RequestHead
from rota.outcome import End, Outcome
from rota.pool import Admin, Backend, Pool, State


class Clock:
    """Time that moves only when a test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def specs(*weights: int, backups: Sequence[int] = ()) -> list[BackendSpec]:
    return [
        BackendSpec(f"s{i}", "127.0.0.1", 7000 + i, weight=w, backup=i in backups)
        for i, w in enumerate(weights)
    ]


def pool_of(
    policy: Policy, *weights: int, clock: Clock | None = None, backups: Sequence[int] = ()
) -> Pool:
    return Pool(specs(*weights, backups=backups), policy=policy, clock=clock or Clock())


def pick(pool: Pool, tried: Sequence[Backend] = (), head: RequestHead | None = None,
         ip: bytes = b"10.0.0.1") -> Backend | None:  # fmt: skip
    return pool.policy.pick(tried, head, ip)


def names(pool: Pool, count: int) -> list[str]:
    out = []
    for _ in range(count):
        b = pick(pool)
        out.append(b.name if b else "-")
    return out


def head(target: bytes = b"/", fields: list[tuple[bytes, bytes]] | None = None) -> RequestHead:
    return RequestHead(
        b"GET", target, (1, 1), fields or [], None, 0, b"h", True, False, False, False,
        frozenset(), False,
    )  # fmt: skip


def every_policy() -> list[Callable[[], Tiered]]:
    return [
        RoundRobin,
        LeastRequests,
        lambda: P2C(rng=random.Random(1)),
        lambda: WeightedRandom(rng=random.Random(1)),
        lambda: ConsistentHash("client_ip"),
        First,
    ]


ALL = pytest.mark.parametrize(
    "make", every_policy(), ids=["rr", "least", "p2c", "random", "hash", "first"]
)


# Every policy: up, tried, backups.


@ALL
def test_every_policy_picks_only_servers_that_are_up(make: Callable[[], Tiered]) -> None:
    pool = pool_of(make(), 1, 1, 1)
    pool.set_state(pool.backends[0], State.DOWN)
    pool.set_admin(pool.backends[2], Admin.DRAINING)
    for i in range(50):
        assert pick(pool, ip=b"10.0.0.%d" % i) is pool.backends[1]
    pool.set_state(pool.backends[1], State.DOWN)
    assert pick(pool) is None


@ALL
def test_every_policy_honours_tried(make: Callable[[], Tiered]) -> None:
    pool = pool_of(make(), 1, 1, 1)
    for i in range(30):
        ip = b"10.0.0.%d" % i
        first = pick(pool, ip=ip)
        assert first is not None
        second = pick(pool, [first], ip=ip)
        assert second is not None and second is not first
        third = pick(pool, [first, second], ip=ip)
        assert third is not None and third not in (first, second)
        assert pick(pool, [first, second, third], ip=ip) is None


@ALL
def test_backups_only_when_no_primary_is_up(make: Callable[[], Tiered]) -> None:
    pool = pool_of(make(), 1, 1, 1, 1, backups=(2, 3))
    p0, p1, b2, b3 = pool.backends
    assert {pick(pool, ip=b"10.0.0.%d" % i) for i in range(40)} <= {p0, p1}
    # A retry whose primaries are all tried stays in the primary tier (as HAProxy does).
    assert pick(pool, [p0, p1]) is None
    pool.set_state(p0, State.DOWN)
    assert {pick(pool, ip=b"10.0.0.%d" % i) for i in range(40)} == {p1}
    pool.set_state(p1, State.DOWN)
    seen = {pick(pool, ip=b"10.0.0.%d" % i) for i in range(40)}
    assert seen <= {b2, b3} and seen
    pool.set_state(p1, State.UP)
    assert {pick(pool, ip=b"10.0.0.%d" % i) for i in range(40)} == {p1}


def test_backups_share_the_load_by_the_same_policy() -> None:
    pool = pool_of(RoundRobin(), 1, 1, 1, backups=(1, 2))
    pool.set_state(pool.backends[0], State.DOWN)
    assert names(pool, 4) == ["s1", "s2", "s1", "s2"]


def test_every_built_in_name_builds_its_policy() -> None:
    spec = PoolSpec("p", tuple(specs(1, 1)), hash_key="client_ip", slow_start=5.0)
    kinds = {name: type(POLICIES[name](replace(spec, algorithm=name))) for name in POLICIES}
    assert kinds == {
        "round_robin": RoundRobin,
        "roundrobin": RoundRobin,
        "least_requests": LeastRequests,
        "p2c": P2C,
        "random": WeightedRandom,
        "hash": ConsistentHash,
        "first": First,
    }
    assert isinstance(POLICIES["p2c"](spec), P2C) and POLICIES["p2c"](spec).slow_start == 5.0


# round_robin


def test_round_robin_weighted_is_smooth() -> None:
    pool = pool_of(RoundRobin(), 5, 1, 1)
    assert names(pool, 14) == ["s0", "s0", "s1", "s0", "s2", "s0", "s0"] * 2


@pytest.mark.parametrize("weights", [(5, 1, 1), (3, 2), (1, 2, 3, 4), (7, 1), (2, 2, 1)])
def test_round_robin_exact_shares_over_a_cycle(weights: tuple[int, ...]) -> None:
    pool = pool_of(RoundRobin(), *weights)
    cycle = sum(weights)
    for _ in range(3):
        counts = Counter(names(pool, cycle))
        assert [counts[f"s{i}"] for i in range(len(weights))] == list(weights)


def test_round_robin_equal_weights_keeps_the_cursor() -> None:
    pool = pool_of(RoundRobin(), 2, 2, 2)
    assert names(pool, 4) == ["s0", "s1", "s2", "s0"]


def test_round_robin_weighted_skips_down_and_tried() -> None:
    pool = pool_of(RoundRobin(), 5, 1, 1)
    pool.set_state(pool.backends[0], State.DOWN)
    assert names(pool, 4) == ["s1", "s2", "s1", "s2"]
    assert pick(pool, [pool.backends[1]]) is pool.backends[2]


def test_round_robin_weight_change_takes_effect() -> None:
    pool = pool_of(RoundRobin(), 1, 1)
    pool.set_weight(pool.backends[0], 3)
    assert Counter(names(pool, 8)) == Counter({"s0": 6, "s1": 2})


# least_requests


def test_least_requests_follows_active() -> None:
    pool = pool_of(LeastRequests(), 1, 1, 1)
    s0, s1, s2 = pool.backends
    s0.active, s1.active, s2.active = 3, 1, 2
    assert pick(pool) is s1
    s1.active = 5
    assert pick(pool) is s2
    assert pick(pool, [s2]) is s0


def test_least_requests_ties_go_round_robin() -> None:
    pool = pool_of(LeastRequests(), 1, 1, 1)
    assert names(pool, 6) == ["s0", "s1", "s2", "s0", "s1", "s2"]
    pool.backends[1].active = 1
    assert names(pool, 4) == ["s0", "s2", "s0", "s2"]


def test_least_requests_divides_by_weight() -> None:
    pool = pool_of(LeastRequests(), 3, 1)
    s0, s1 = pool.backends
    # (active + 1) / weight: s0 takes three in flight for each one of s1's.
    for _ in range(8):
        chosen = pick(pool)
        assert chosen is not None
        chosen.active += 1
    assert (s0.active, s1.active) == (6, 2)


# p2c


def ended(
    policy: Policy,
    backend: Backend,
    latency: float,
    clock: Clock,
    end: End = End.COMPLETE,
    status: int = 200,
) -> None:
    outcome = Outcome("web", clock.now - latency)
    outcome.end = end
    outcome.finished = clock.now
    outcome.status = status
    policy.ended(backend, outcome)


def warm(pool: Pool, clock: Clock, latencies: Sequence[float], rounds: int = 20) -> None:
    for _ in range(rounds):
        clock.now += 0.1
        for backend, latency in zip(pool.backends, latencies, strict=True):
            ended(pool.policy, backend, latency, clock)


def test_p2c_avoids_a_slow_server() -> None:
    clock = Clock()
    policy = P2C(clock=clock, rng=random.Random(7))
    pool = pool_of(policy, 1, 1, 1, clock=clock)
    warm(pool, clock, [0.001, 0.050, 0.001])
    counts = Counter(names(pool, 300))
    assert counts["s1"] == 0 and counts["s0"] > 100 and counts["s2"] > 100


def test_p2c_weighs_in_flight_requests() -> None:
    clock = Clock()
    policy = P2C(clock=clock, rng=random.Random(7))
    pool = pool_of(policy, 1, 1, clock=clock)
    warm(pool, clock, [0.001, 0.002])
    s0, s1 = pool.backends
    assert pick(pool) is s0
    s0.active = 3  # 1 ms x 4 > 2 ms x 1
    assert pick(pool) is s1


def test_p2c_probes_a_slow_server_again_after_a_while() -> None:
    clock = Clock()
    policy = P2C(clock=clock, rng=random.Random(3))
    pool = pool_of(policy, 1, 1, 1, clock=clock)
    warm(pool, clock, [0.001, 0.050, 0.001])
    s0, s1, s2 = pool.backends
    s0.active = s2.active = 2  # the fast ones are busy
    assert s1 not in {pick(pool) for _ in range(50)}
    clock.now += 60.0  # no answer from s1 in a minute: its cost decays toward default_rtt
    assert s1 in {pick(pool) for _ in range(50)}
    # The probe finds it still slow: shunned again at once (peak sensitive).
    ended(policy, s1, 0.050, clock)
    assert s1 not in {pick(pool) for _ in range(50)}


def test_p2c_peak_is_immediate_and_recovery_gradual() -> None:
    clock = Clock()
    policy = P2C(clock=clock)
    pool = pool_of(policy, 1, clock=clock)
    s0 = pool.backends[0]
    warm(pool, clock, [0.001])
    load = policy.load(s0)
    assert load is not None
    ended(policy, s0, 0.100, clock)
    assert load.cost == pytest.approx(0.100)
    clock.now += 1.0
    ended(policy, s0, 0.001, clock)
    assert 0.001 < load.cost < 0.100  # an EWMA: one fast answer does not erase the peak
    for _ in range(100):
        clock.now += 1.0
        ended(policy, s0, 0.001, clock)
    assert load.cost == pytest.approx(0.001, rel=0.01)


def test_p2c_failed_attempt_is_a_penalty() -> None:
    clock = Clock()
    policy = P2C(clock=clock, rng=random.Random(5))
    pool = pool_of(policy, 1, 1, clock=clock)
    warm(pool, clock, [0.001, 0.001])
    s0, s1 = pool.backends
    attempt = Outcome("web", clock.now)  # end stays OPEN: the connect failed
    policy.ended(s0, attempt)
    assert {pick(pool) for _ in range(30)} == {s1}
    load = policy.load(s0)
    assert load is not None and load.cost == policy.penalty
    # rota's own 502 for this backend counts as a failure too; a client leaving does not
    # lower the cost.
    ended(policy, s1, 0.0001, clock, End.CANCELLED)
    assert policy.load(s1).cost > 0.0001  # type: ignore[union-attr]
    ended(policy, s1, 0.0001, clock, End.LOCAL, 502)
    load1 = policy.load(s1)
    assert load1 is not None and load1.cost == policy.penalty


def test_p2c_probes_a_new_server_once() -> None:
    clock = Clock()
    policy = P2C(clock=clock, rng=random.Random(2))
    pool = pool_of(policy, 1, 1, clock=clock)
    warm(pool, clock, [0.001, 0.001])
    new = pool.add(BackendSpec("s9", "127.0.0.1", 7009))
    picks = []
    for _ in range(40):
        chosen = pick(pool)
        assert chosen is not None
        chosen.active += 1  # none ends yet
        picks.append(chosen)
    assert picks.count(new) == 1


# random


def test_random_shares_follow_weights() -> None:
    pool = pool_of(WeightedRandom(rng=random.Random(11)), 6, 3, 1)
    counts = Counter(names(pool, 20_000))
    for name, share in (("s0", 0.6), ("s1", 0.3), ("s2", 0.1)):
        assert counts[name] / 20_000 == pytest.approx(share, abs=0.015)


def test_random_redraws_among_usable_by_weight() -> None:
    pool = pool_of(WeightedRandom(rng=random.Random(11)), 6, 3, 1)
    pool.set_state(pool.backends[0], State.DOWN)
    counts = Counter(names(pool, 20_000))
    assert counts["s0"] == 0
    assert counts["s1"] / 20_000 == pytest.approx(0.75, abs=0.015)


# hash


def test_hash_same_key_same_server() -> None:
    pool = pool_of(ConsistentHash("client_ip"), 1, 1, 1, 1)
    for i in range(100):
        ip = b"192.168.1.%d" % i
        first = pick(pool, ip=ip)
        assert all(pick(pool, ip=ip) is first for _ in range(5))
    assert len({pick(pool, ip=b"192.168.1.%d" % i) for i in range(100)}) == 4


KEYS = [b"user-%d" % i for i in range(20_000)]


def owners(policy: ConsistentHash) -> list[str]:
    out = []
    for key in KEYS:
        found = policy.locate(key_hash(key), ())
        assert found is not None
        out.append(found.id)
    return out


def test_hash_only_the_keys_of_a_server_that_leaves_move() -> None:
    pool = pool_of(ConsistentHash("client_ip"), 1, 1, 1, 1, 1)
    assert isinstance(pool.policy, ConsistentHash)
    before = owners(pool.policy)
    pool.set_state(pool.get("s2"), State.DOWN)  # type: ignore[arg-type]
    down = owners(pool.policy)
    pool.remove("s2")
    removed = owners(pool.policy)
    for old, new_down, new_removed in zip(before, down, removed, strict=True):
        if old != "s2":
            assert new_down == old and new_removed == old
        else:
            assert new_down != "s2" and new_removed == new_down
    assert 0.1 < before.count("s2") / len(KEYS) < 0.3


def test_hash_a_joining_server_takes_only_its_share() -> None:
    pool = pool_of(ConsistentHash("client_ip"), 1, 1, 1, 1)
    assert isinstance(pool.policy, ConsistentHash)
    before = owners(pool.policy)
    pool.add(BackendSpec("s9", "127.0.0.1", 7009))
    after = owners(pool.policy)
    moved = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert all(b == "s9" for _, b in moved)  # keys move only to the new server
    assert len(moved) / len(KEYS) <= 1 / 5 + 0.02


def test_hash_bounded_load() -> None:
    factor = 1.25
    pool = pool_of(ConsistentHash("client_ip", factor), 1, 1, 1, 1)
    # One hot key and a few others: unbounded, the hot key's server would take it all.
    for i in range(400):
        ip = b"10.0.0.1" if i % 4 else b"10.0.1.%d" % i
        chosen = pick(pool, ip=ip)
        assert chosen is not None
        chosen.active += 1
        total = sum(b.active for b in pool.backends)
        assert max(b.active for b in pool.backends) <= -(-factor * total // 4)
    assert min(b.active for b in pool.backends) > 0


def test_hash_unbounded_keeps_a_hot_key_on_one_server() -> None:
    pool = pool_of(ConsistentHash("client_ip"), 1, 1, 1, 1)
    for _ in range(50):
        chosen = pick(pool, ip=b"10.0.0.1")
        assert chosen is not None
        chosen.active += 1
    assert sorted(b.active for b in pool.backends) == [0, 0, 0, 50]


@pytest.mark.parametrize(
    ("key", "with_key", "same_key"),
    [
        ("header:X-User", head(fields=[(b"X-USER", b" al ")]), head(fields=[(b"x-user", b"al")])),
        (
            "cookie:sid",
            head(fields=[(b"Cookie", b"a=1; sid=4")]),
            head(fields=[(b"cookie", b"sid=4")]),
        ),
        ("path", head(b"/cart?x=1"), head(b"/cart?y=2")),
        ("query:u", head(b"/a?x=1&u=bob"), head(b"/b?u=bob")),
    ],
)
def test_hash_keys(key: str, with_key: RequestHead, same_key: RequestHead) -> None:
    policy = ConsistentHash(key)
    assert policy.key_of(with_key, b"1.2.3.4") == policy.key_of(same_key, b"5.6.7.8")
    assert policy.key_of(with_key, b"") is not None
    assert policy.key_of(head(b"/?v=1", [(b"Other", b"1")]), b"1.2.3.4") is None or key == "path"
    assert policy.key_of(None, b"1.2.3.4") is None  # TCP: only client_ip is a key


def test_hash_missing_key_falls_back_to_round_robin() -> None:
    pool = pool_of(ConsistentHash("header:x-user"), 1, 1, 1)
    got = [pool.policy.pick((), head(), b"1.2.3.4") for _ in range(6)]
    assert [b.name for b in got if b] == ["s0", "s1", "s2", "s0", "s1", "s2"]


@pytest.mark.parametrize("bad", ["", "ip", "header:", "header", "query:", "cookies:x"])
def test_hash_bad_keys_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="hash key"):
        parse_key(bad)


# first


def test_first_takes_the_first_up_in_config_order() -> None:
    pool = pool_of(First(), 1, 5, 1)
    assert names(pool, 3) == ["s0", "s0", "s0"]
    pool.set_state(pool.backends[0], State.DOWN)
    assert names(pool, 2) == ["s1", "s1"]
    assert pick(pool, [pool.backends[1]]) is pool.backends[2]
    pool.set_state(pool.backends[0], State.UP)
    assert names(pool, 1) == ["s0"]


# slow start


def test_slow_start_ramps_a_server_that_comes_back() -> None:
    clock = Clock()
    pool = pool_of(RoundRobin(slow_start=10.0, clock=clock), 1, 1, clock=clock)
    s0, s1 = pool.backends
    assert s0.up_since == float("-inf")  # initial servers: full weight at start
    assert names(pool, 4) == ["s0", "s1", "s0", "s1"]
    pool.set_state(s1, State.DOWN)
    clock.now += 5.0
    pool.set_state(s1, State.UP)
    assert s1.up_since == clock.now
    shares = []
    for _ in range(5):
        counts = Counter(names(pool, 1000))
        shares.append(counts["s1"] / 1000)
        clock.now += 2.0
    # weight x max(10%, elapsed / 10 s): 0.1, 0.2, 0.4, 0.6, 0.8 of s0's share, then equal
    expected = [w / (1 + w) for w in (MIN_SHARE, 0.2, 0.4, 0.6, 0.8)]
    assert shares == pytest.approx(expected, abs=0.01)
    clock.now += 1.0
    assert names(pool, 4) == ["s0", "s1", "s0", "s1"] or names(pool, 4) == ["s1", "s0", "s1", "s0"]


@pytest.mark.parametrize(
    "make",
    [
        LeastRequests,
        lambda **kw: WeightedRandom(rng=random.Random(4), **kw),
        lambda **kw: P2C(rng=random.Random(4), **kw),
    ],
    ids=["least", "random", "p2c"],
)
def test_slow_start_for_a_server_added_at_run_time(make: Callable[..., Tiered]) -> None:
    clock = Clock()
    pool = pool_of(make(slow_start=10.0, clock=clock), 1, clock=clock)
    added = pool.add(BackendSpec("s9", "127.0.0.1", 7009))
    assert added.up_since == clock.now

    def share() -> float:
        # Eight requests in flight at any time, each answered in 1 ms.
        hits = 0
        in_flight: deque[Backend] = deque()
        for _ in range(2000):
            chosen = pick(pool)
            assert chosen is not None
            hits += chosen is added
            chosen.active += 1
            in_flight.append(chosen)
            if len(in_flight) > 8:
                done = in_flight.popleft()
                done.active -= 1
                ended(pool.policy, done, 0.001, clock)
        while in_flight:
            in_flight.popleft().active -= 1
        return hits / 2000

    clock.now += 1.0
    early = share()
    clock.now += 20.0
    late = share()
    assert early < 0.2 and 0.4 < late < 0.6


def test_no_slow_start_means_no_clock() -> None:
    def stopped() -> float:
        raise AssertionError("read the clock")

    pool = Pool(specs(1, 2), policy=RoundRobin(clock=stopped))
    pool.add(BackendSpec("s9", "127.0.0.1", 7009))
    assert len(names(pool, 10)) == 10
