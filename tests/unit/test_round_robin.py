"""Round robin over a pool, and the pool itself: membership by id, health and admin states."""

from rota.balancing import RoundRobin
from rota.config.model import BackendSpec
from rota.pool import Admin, Backend, Pool, State


def make_pool(n: int = 3) -> Pool:
    return Pool(BackendSpec(name=f"b{i}", host="127.0.0.1", port=5000 + i) for i in range(n))


def pick(pool: Pool, tried: list[Backend] | None = None) -> Backend | None:
    return pool.policy.pick(tried or [], None, b"127.0.0.1")


def names(pool: Pool, count: int) -> list[str | None]:
    out: list[str | None] = []
    for _ in range(count):
        b = pick(pool)
        out.append(b.name if b else None)
    return out


def test_the_default_policy_is_round_robin() -> None:
    assert isinstance(make_pool().policy, RoundRobin)


def test_cycles_in_config_order_and_wraps() -> None:
    assert names(make_pool(), 7) == ["b0", "b1", "b2", "b0", "b1", "b2", "b0"]


def test_skips_down_backends() -> None:
    pool = make_pool()
    pool.set_state(pool.backends[1], State.DOWN)
    assert names(pool, 4) == ["b0", "b2", "b0", "b2"]


def test_down_backend_rejoins_at_its_place() -> None:
    pool = make_pool()
    pool.set_state(pool.backends[1], State.DOWN)
    assert names(pool, 1) == ["b0"]
    pool.set_state(pool.backends[1], State.UP)
    assert names(pool, 4) == ["b1", "b2", "b0", "b1"]


def test_wraps_past_a_down_last_backend() -> None:
    pool = make_pool()
    pool.set_state(pool.backends[2], State.DOWN)
    assert names(pool, 5) == ["b0", "b1", "b0", "b1", "b0"]


def test_none_up_gives_none() -> None:
    pool = make_pool()
    for b in pool.backends:
        pool.set_state(b, State.DOWN)
    assert pick(pool) is None


def test_tried_backends_are_skipped_for_retries() -> None:
    pool = make_pool()
    first = pick(pool)
    assert first is not None and first.name == "b0"
    # b1 refused; the retry must not pick it again, nor b0 which was tried
    retry = pick(pool, [first, pool.backends[1]])
    assert retry is not None and retry.name == "b2"
    assert pick(pool, list(pool.backends)) is None


def test_single_backend() -> None:
    assert names(make_pool(1), 3) == ["b0", "b0", "b0"]


def test_set_state_reports_change_and_notifies() -> None:
    pool = make_pool()
    seen: list[tuple[str, str, str]] = []
    pool.subscribe(lambda b, why: seen.append((b.name, b.state.value, why)))
    assert pool.set_state(pool.backends[0], State.DOWN, "refused")
    assert not pool.set_state(pool.backends[0], State.DOWN, "again")
    assert seen == [("b0", "DOWN", "refused")]
    assert pool.up_count() == 2


def test_servers_are_keyed_by_id_not_position() -> None:
    pool = Pool(
        [
            BackendSpec("a", "127.0.0.1", 5001, id="x1"),
            BackendSpec("b", "127.0.0.1", 5002),
        ]
    )
    x1 = pool.get("x1")
    assert x1 is not None and x1.name == "a"
    assert pool.get("b") is pool.backends[1]  # no id: the name is the id
    assert pool.get("a") is None


def test_added_server_joins_the_rotation_and_removed_one_leaves_it() -> None:
    pool = make_pool(2)
    assert names(pool, 2) == ["b0", "b1"]
    pool.add(BackendSpec("b9", "127.0.0.1", 5009))
    assert names(pool, 3) == ["b0", "b1", "b9"]
    removed = pool.remove("b1")
    assert removed is not None and not removed.up
    assert names(pool, 4) == ["b0", "b9", "b0", "b9"]
    assert pool.remove("b1") is None


def test_duplicate_id_is_refused() -> None:
    pool = make_pool(1)
    try:
        pool.add(BackendSpec("b0", "127.0.0.1", 6000))
    except ValueError as exc:
        assert "duplicate server id" in str(exc)
    else:
        raise AssertionError("a second b0 was accepted")


def test_admin_state_is_separate_from_health() -> None:
    pool = make_pool(2)
    b0 = pool.backends[0]
    pool.set_admin(b0, Admin.DRAINING)
    assert not b0.up
    assert names(pool, 2) == ["b1", "b1"]
    # A passing health check does not undo an operator's drain.
    pool.set_state(b0, State.DOWN, "x")
    pool.set_state(b0, State.UP, "2 checks passed")
    assert not b0.up
    pool.set_admin(b0, Admin.ENABLED)
    assert b0.up
    # ... and enabling does not bring up a server that is unhealthy.
    pool.set_state(b0, State.DOWN, "refused")
    pool.set_admin(b0, Admin.DISABLED)
    pool.set_admin(b0, Admin.ENABLED)
    assert not b0.up


def test_weight_change_reaches_the_policy() -> None:
    pool = make_pool(2)
    pool.set_weight(pool.backends[0], 5)
    assert pool.backends[0].weight == 5


def test_every_algorithm_the_config_accepts_has_a_policy() -> None:
    from rota.balancing import POLICIES
    from rota.config.model import ALGORITHMS

    assert set(ALGORITHMS) == set(POLICIES)
