"""What the admin listener's counters count, in memory (rota.observe.metrics), how the
supervisor sums them (rota.admin.collect) and how it reads latency percentiles."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from rota.admin.collect import Window, add, empty, quantile, total
from rota.observe.metrics import BUCKETS, Histogram
from tests.support.memory import Harness


def get(target: bytes = b"/") -> bytes:
    return b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target


def ok(body: bytes = b"hi") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def test_a_proxied_request_is_counted_once_with_its_server_and_bytes() -> None:
    h = Harness(backends=2)
    stats = h.count()
    c = h.client()
    for i in range(4):
        c.send(get())
        h.backend_conn(i % 2).send(ok(b"hello"))
    snap = stats.snapshot(h.runtime)
    servers = {key[2]: n for key, n in snap["requests"].items()}
    assert servers == {"127.0.0.1:7001": 2, "127.0.0.1:7002": 2}
    assert all(key[3] == 200 and key[1] == "default" for key in snap["requests"])
    assert sum(snap["duration"][("default", "default")][0]) == 4
    assert snap["bytes"][("default", "out")] == 4 * len(b"hello")
    assert snap["local"] == {}


def test_rota_own_answers_have_no_server_and_count_as_local() -> None:
    h = Harness(backends=2)
    stats = h.count()
    h.refuse(0)
    h.refuse(1)
    c = h.client()
    c.send(get())
    assert c.received().startswith(b"HTTP/1.1 503")
    snap = stats.snapshot(h.runtime)
    assert snap["requests"] == {("default", "default", "", 503): 1}
    assert snap["local"] == {("default", 503): 1}
    assert snap["connect_failures"] == {
        ("default", "127.0.0.1:7001"): 1,
        ("default", "127.0.0.1:7002"): 1,
    }


def test_a_malformed_request_is_counted_as_a_local_400() -> None:
    h = Harness(backends=1)
    stats = h.count()
    c = h.client()
    c.send(b"GET / HTTP/1.1\r\nBad Field\r\n\r\n")
    assert c.received().startswith(b"HTTP/1.1 400")
    snap = stats.snapshot(h.runtime)
    assert snap["requests"] == {("default", "", "", 400): 1}
    assert snap["local"] == {("default", 400): 1}


def test_a_client_that_leaves_before_the_answer_is_counted_without_a_status() -> None:
    h = Harness(backends=1)
    stats = h.count()
    c = h.client()
    c.send(get())
    h.backend_conn(0)
    c.lose()
    requests = stats.snapshot(h.runtime)["requests"]
    assert list(requests.values()) == [1]
    ((_, _, _, status),) = requests
    assert status == 0


def test_off_nothing_counts() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(get())
    h.backend_conn(0).send(ok())
    assert h.runtime.stats is None


# --- sums and percentiles ------------------------------------------------------------------


def test_workers_sum_bucket_by_bucket_and_retired_counts_stay() -> None:
    a = {"requests": {("w", "p", "s", 200): 3}, "duration": {("w", "p"): ([1] + [0] * 16, 0.1)}}
    b = {"requests": {("w", "p", "s", 200): 4}, "duration": {("w", "p"): ([0, 2] + [0] * 15, 0.2)}}
    retired = empty()
    add(retired, {"requests": {("w", "p", "s", 200): 10}})
    summed = total([a, b], retired)
    assert summed["requests"] == {("w", "p", "s", 200): 17}
    counts, seconds = summed["duration"][("w", "p")]
    assert counts[:2] == [1, 2] and abs(seconds - 0.3) < 1e-9


@given(st.lists(st.floats(min_value=0.0, max_value=100.0), min_size=1, max_size=200))
def test_a_quantile_falls_in_the_bucket_of_the_true_one(values: list[float]) -> None:
    h = Histogram()
    for v in values:
        h.observe(v)
    ordered = sorted(values)
    for q in (0.5, 0.99):
        got = quantile(q, h.counts)
        assert got is not None
        true = ordered[max(0, math.ceil(q * len(values)) - 1)]
        # the estimate is in the same bucket as the true value (or the last bound)
        lo = max([0.0, *(b for b in BUCKETS if b < true)])
        hi = min([*(b for b in BUCKETS if b >= true), BUCKETS[-1]])
        assert lo - 1e-9 <= got <= hi + 1e-9 or true > BUCKETS[-1]


def test_no_observations_no_quantile() -> None:
    assert quantile(0.5, [0] * (len(BUCKETS) + 1)) is None


def test_the_window_is_bounded_however_long_it_runs() -> None:
    w = Window()
    for second in range(5000):
        w.push(float(second), {"requests": {}}, {("p", "s"): "up"})
    assert len(w.sums) == 61
    assert len(w.history[("p", "s")]) == 300
    w.push(5001.0, {}, {})
    assert w.history == {}  # a removed server's timeline goes with it
