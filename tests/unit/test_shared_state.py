from rota.config.model import BackendSpec
from rota.pool import Pool, State
from rota.shared_state import REASONS, SharedStates


def make_pool(n: int = 3) -> Pool:
    return Pool(BackendSpec(name=f"b{i}", host="127.0.0.1", port=5000 + i) for i in range(n))


def test_backends_start_up_and_changes_reach_a_worker_pool() -> None:
    shared = SharedStates.create(3, 2)
    worker_pool = make_pool()
    seen = [-1] * 3
    shared.apply(worker_pool, seen)
    assert [b.up for b in worker_pool.backends] == [True, True, True]
    shared.publish(1, False)
    shared.apply(worker_pool, seen)
    assert [b.up for b in worker_pool.backends] == [True, False, True]
    shared.publish(1, True)
    shared.apply(worker_pool, seen)
    assert worker_pool.backends[1].up


def test_a_local_passive_down_holds_until_the_supervisor_changes_state() -> None:
    shared = SharedStates.create(2, 1)
    pool = make_pool(2)
    seen = [-1] * 2
    shared.apply(pool, seen)
    pool.set_state(pool.backends[0], State.DOWN, "connection refused")
    shared.apply(pool, seen)  # no new generation: the local DOWN stays
    assert not pool.backends[0].up
    shared.publish(0, False)
    shared.publish(0, True)
    shared.apply(pool, seen)
    assert pool.backends[0].up


def test_failure_reports_are_per_worker_with_their_reason() -> None:
    shared = SharedStates.create(3, 2)
    before = shared.failures()
    shared.report_failure(1, 2, "connect timeout")
    after = shared.failures()
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert changed == [1 * 3 + 2]
    assert shared.reason(1, 2) == "connect timeout"
    shared.report_failure(0, 0, "something odd")
    assert shared.reason(0, 0) == REASONS[-1]
