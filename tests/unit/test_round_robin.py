from rota.balancing import RoundRobin
from rota.config.model import BackendSpec
from rota.pool import Pool, State


def make_pool(n: int = 3) -> Pool:
    return Pool(BackendSpec(name=f"b{i}", host="127.0.0.1", port=5000 + i) for i in range(n))


def names(rr: RoundRobin, count: int) -> list[str | None]:
    out: list[str | None] = []
    for _ in range(count):
        b = rr.pick()
        out.append(b.name if b else None)
    return out


def test_cycles_in_config_order_and_wraps() -> None:
    rr = RoundRobin(make_pool())
    assert names(rr, 7) == ["b0", "b1", "b2", "b0", "b1", "b2", "b0"]


def test_skips_down_backends() -> None:
    pool = make_pool()
    rr = RoundRobin(pool)
    pool.set_state(pool.backends[1], State.DOWN)
    assert names(rr, 4) == ["b0", "b2", "b0", "b2"]


def test_down_backend_rejoins_at_its_place() -> None:
    pool = make_pool()
    rr = RoundRobin(pool)
    pool.set_state(pool.backends[1], State.DOWN)
    assert names(rr, 1) == ["b0"]
    pool.set_state(pool.backends[1], State.UP)
    assert names(rr, 4) == ["b1", "b2", "b0", "b1"]


def test_wraps_past_a_down_last_backend() -> None:
    pool = make_pool()
    rr = RoundRobin(pool)
    pool.set_state(pool.backends[2], State.DOWN)
    assert names(rr, 5) == ["b0", "b1", "b0", "b1", "b0"]


def test_none_up_gives_none() -> None:
    pool = make_pool()
    rr = RoundRobin(pool)
    for b in pool.backends:
        pool.set_state(b, State.DOWN)
    assert rr.pick() is None


def test_exclude_for_retries() -> None:
    pool = make_pool()
    rr = RoundRobin(pool)
    first = rr.pick()
    assert first is not None and first.name == "b0"
    # b1 refused; the retry must not pick it again, nor b0 which was tried
    tried = [first, pool.backends[1]]
    retry = rr.pick(tried)
    assert retry is not None and retry.name == "b2"
    assert rr.pick(list(pool.backends)) is None


def test_single_backend() -> None:
    rr = RoundRobin(make_pool(1))
    assert names(rr, 3) == ["b0", "b0", "b0"]


def test_set_state_reports_change_and_notifies() -> None:
    pool = make_pool()
    seen: list[tuple[str, str, str]] = []
    pool.subscribe(lambda b, old, new, why: seen.append((b.name, new.value, why)))
    assert pool.set_state(pool.backends[0], State.DOWN, "refused")
    assert not pool.set_state(pool.backends[0], State.DOWN, "again")
    assert seen == [("b0", "DOWN", "refused")]
    assert pool.up_count() == 2
