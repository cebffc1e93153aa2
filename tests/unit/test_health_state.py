"""The rise/fall machine and the probe schedule: pure, driven by hand and by a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rota.health.state import ProbeSchedule, RiseFall, Transition
from rota.pool import State

PASS = (True, "status 200")
FAIL = (False, "status 500")


def feed(machine: RiseFall, results: list[tuple[bool, str]]) -> list[Transition | None]:
    return [machine.record(ok, reason) for ok, reason in results]


def test_starts_up() -> None:
    assert RiseFall(2, 3).state is State.UP


def test_fall_consecutive_failures_take_it_down_with_the_last_reason() -> None:
    m = RiseFall(rise=2, fall=3)
    out = feed(m, [FAIL, FAIL, (False, "connection refused")])
    assert out == [None, None, Transition(State.DOWN, "connection refused")]
    assert m.state is State.DOWN


def test_a_pass_while_up_resets_the_failure_count() -> None:
    m = RiseFall(rise=2, fall=3)
    assert feed(m, [FAIL, FAIL, PASS, FAIL, FAIL]) == [None] * 5
    assert m.state is State.UP
    assert m.record(*FAIL) == Transition(State.DOWN, "status 500")


def test_rise_consecutive_passes_bring_it_back() -> None:
    m = RiseFall(rise=2, fall=1)
    assert m.record(*FAIL) == Transition(State.DOWN, "status 500")
    assert m.record(*PASS) is None
    assert m.record(*PASS) == Transition(State.UP, "2 checks passed")
    assert m.state is State.UP


def test_a_failure_while_down_resets_the_pass_count() -> None:
    m = RiseFall(rise=3, fall=1)
    m.record(*FAIL)
    assert feed(m, [PASS, PASS, FAIL, PASS, PASS]) == [None] * 5
    assert m.state is State.DOWN
    assert m.record(*PASS) == Transition(State.UP, "3 checks passed")


def test_rise_and_fall_of_one_follow_every_result() -> None:
    m = RiseFall(rise=1, fall=1)
    assert m.record(*FAIL) == Transition(State.DOWN, "status 500")
    assert m.record(*PASS) == Transition(State.UP, "1 check passed")
    assert m.record(*PASS) is None
    assert m.record(*FAIL) == Transition(State.DOWN, "status 500")


def test_flapping_backend_that_never_strings_enough_results_stays_put() -> None:
    # Alternating results never reach rise=2 or fall=2 consecutive: no transition at all,
    # whichever state the flapping starts in.
    up = RiseFall(rise=2, fall=2)
    assert feed(up, [FAIL, PASS] * 50) == [None] * 100
    assert up.state is State.UP
    down = RiseFall(rise=2, fall=2, state=State.DOWN)
    assert feed(down, [PASS, FAIL] * 50) == [None] * 100
    assert down.state is State.DOWN


def test_force_down_is_immediate_and_coming_back_takes_rise_passes() -> None:
    m = RiseFall(rise=2, fall=3)
    assert m.force_down("connection refused") == Transition(State.DOWN, "connection refused")
    assert m.record(*PASS) is None
    assert m.record(*PASS) == Transition(State.UP, "2 checks passed")


def test_force_down_while_down_restarts_the_pass_count() -> None:
    m = RiseFall(rise=2, fall=1)
    m.record(*FAIL)
    assert m.record(*PASS) is None
    assert m.force_down("connection reset") is None  # already DOWN: nothing to log
    assert m.record(*PASS) is None  # one pass again, not two
    assert m.record(*PASS) == Transition(State.UP, "2 checks passed")


def test_force_down_clears_failures_counted_while_up() -> None:
    m = RiseFall(rise=1, fall=3)
    feed(m, [FAIL, FAIL])
    m.force_down("connection refused")
    assert m.record(*PASS) == Transition(State.UP, "1 check passed")
    # The two earlier failures are forgotten: it takes three fresh ones to go down again.
    assert feed(m, [FAIL, FAIL]) == [None, None]
    assert m.record(*FAIL) is not None


def test_rejects_nonsense_thresholds() -> None:
    with pytest.raises(ValueError):
        RiseFall(rise=0, fall=3)
    with pytest.raises(ValueError):
        RiseFall(rise=2, fall=0)


@given(
    rise=st.integers(1, 5),
    fall=st.integers(1, 5),
    results=st.lists(st.booleans(), max_size=60),
)
def test_matches_a_model_of_consecutive_runs(rise: int, fall: int, results: list[bool]) -> None:
    """State after any sequence: DOWN iff some run of `fall` failures was not followed by
    a run of `rise` passes. Transitions alternate and each one changes the state."""
    m = RiseFall(rise, fall)
    state = State.UP
    run = 0
    for ok in results:
        # The model: the length of the current run of results that disagree with `state`.
        disagrees = (state is State.UP and not ok) or (state is State.DOWN and ok)
        run = run + 1 if disagrees else 0
        expected = None
        if state is State.UP and run == fall:
            state, run, expected = State.DOWN, 0, State.DOWN
        elif state is State.DOWN and run == rise:
            state, run, expected = State.UP, 0, State.UP
        got = m.record(ok, "r")
        assert (got.state if got else None) is expected
        assert m.state is state


class FakeRandom:
    """Returns the queued values in turn, then 0.5 (no jitter)."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def __call__(self) -> float:
        return self.values.pop(0) if self.values else 0.5


def test_first_probe_is_due_at_once() -> None:
    s = ProbeSchedule(2.0, now=100.0, rand=FakeRandom())
    assert s.wait(100.0) == 0.0


def test_next_probe_is_one_interval_after_the_start_of_the_last() -> None:
    s = ProbeSchedule(2.0, now=100.0, rand=FakeRandom())
    s.started(100.0)
    assert s.due == pytest.approx(102.0)
    # The probe took 1.5 s: the next one is still due at 102, not 103.5.
    assert s.wait(101.5) == pytest.approx(0.5)
    assert s.wait(103.0) == 0.0


def test_jitter_stays_within_its_fraction() -> None:
    s = ProbeSchedule(2.0, now=0.0, jitter=0.1, rand=FakeRandom(0.0, 0.999999, 0.25))
    s.started(0.0)
    assert s.due == pytest.approx(1.8)
    s.started(10.0)
    assert s.due == pytest.approx(12.2, abs=1e-5)
    s.started(20.0)
    assert s.due == pytest.approx(21.9)


@given(st.floats(0.0, 1.0, exclude_max=True), st.floats(0.01, 60.0), st.floats(0.0, 0.5))
def test_gap_is_always_within_interval_times_one_plus_minus_jitter(
    u: float, interval: float, jitter: float
) -> None:
    s = ProbeSchedule(interval, now=0.0, jitter=jitter, rand=FakeRandom(u))
    s.started(5.0)
    gap = s.due - 5.0
    assert interval * (1 - jitter) - 1e-9 <= gap <= interval * (1 + jitter) + 1e-9


def test_request_now_brings_the_probe_forward_but_not_before_the_min_gap() -> None:
    s = ProbeSchedule(5.0, now=0.0, min_gap=0.5, rand=FakeRandom())
    s.started(0.0)
    s.request_now(0.1)
    assert s.due == pytest.approx(0.5)  # not sooner than min_gap after the last start
    s.request_now(3.0)
    assert s.due == pytest.approx(0.5)  # never pushed later
    s.started(3.0)
    s.request_now(4.0)
    assert s.due == pytest.approx(4.0)


def test_request_now_before_any_probe_is_due_at_once() -> None:
    s = ProbeSchedule(5.0, now=7.0, rand=FakeRandom())
    s.request_now(7.0)
    assert s.wait(7.0) == 0.0


def test_schedule_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        ProbeSchedule(0.0, now=0.0, rand=FakeRandom())
    with pytest.raises(ValueError):
        ProbeSchedule(1.0, now=0.0, jitter=1.0, rand=FakeRandom())
