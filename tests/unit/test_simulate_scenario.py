"""Scenarios as a user writes them: what is refused (naming file, field and line) and what
a run shows (events, limits and the queue, closed loops, replays, the same seed)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from rota.simulate.run import Options, simulate
from rota.simulate.scenario import ScenarioError, load_scenario

BASE = """seed = 3
requests = 2000
[load]
kind = "poisson"
rate = 50.0
[[servers]]
count = 4
service = { dist = "exponential", mean = 0.05 }
[[policies]]
algorithm = "round_robin"
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def refused(tmp_path: Path, text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write(tmp_path, text))
    return caught.value


def summaries(tmp_path: Path, text: str) -> dict[str, dict[str, object]]:
    results = simulate(load_scenario(write(tmp_path, text)), Options(progress=False))
    return {r.algorithm: r.summary() for r in results}


def test_an_unknown_distribution_names_the_field_and_its_line(tmp_path: Path) -> None:
    err = refused(tmp_path, BASE.replace('"exponential"', '"gaussian"'))
    assert err.field == "servers[0].service.dist" and err.line == 8
    assert "gaussian" in str(err) and "exponential, lognormal, constant, empirical" in str(err)
    assert str(err).startswith(f"{tmp_path / 's.toml'}:8: servers[0].service.dist")


def test_a_negative_rate_is_refused_with_its_line(tmp_path: Path) -> None:
    err = refused(tmp_path, BASE.replace("rate = 50.0", "rate = -5"))
    assert (err.field, err.line) == ("load.rate", 5)
    assert "expected a number > 0, got -5" in str(err)


def test_a_log_it_cannot_read_names_the_log_and_its_line(tmp_path: Path) -> None:
    (tmp_path / "access.jsonl").write_text(
        '{"time": "2026-11-24T14:00:00Z", "response_time": 0.01}\n{"time": "yesterday"}\n'
    )
    text = BASE.replace('kind = "poisson"\nrate = 50.0', 'kind = "replay"\nlog = "access.jsonl"')
    err = refused(tmp_path, text)
    assert (err.field, err.line) == ("load.log", 5)
    assert f"{tmp_path / 'access.jsonl'}:2:" in str(err) and "RFC 3339" in str(err)
    missing = refused(tmp_path, text.replace("access.jsonl", "nowhere.jsonl"))
    assert "cannot read" in str(missing) and missing.field == "load.log"


def test_a_policy_that_fails_to_load_names_the_field(tmp_path: Path) -> None:
    err = refused(tmp_path, BASE.replace('"round_robin"', '"no_such_module:Policy"'))
    assert (err.field, err.line) == ("policies[0].algorithm", 10)
    assert "cannot import" in str(err)
    text = BASE.replace('"round_robin"', '"tests.support.sim_policies:Broken"\noptions = { a = 1 }')
    err = refused(tmp_path, text)
    assert err.field == "policies[0].options" and "no options suit me" in str(err)
    err = refused(tmp_path, BASE.replace('"round_robin"', '"round_robbin"'))
    assert 'did you mean "round_robin"' in str(err)


def test_unknown_keys_and_missing_tables_are_named(tmp_path: Path) -> None:
    err = refused(tmp_path, BASE.replace("count = 4", "count = 4\nconcurency = 2"))
    assert (err.field, err.line) == ("servers[0].concurency", 8)
    assert 'did you mean "concurrency"' in str(err)
    assert refused(tmp_path, BASE.split("[[servers]]")[0]).field == "servers"
    err = refused(tmp_path, BASE + '[[events]]\nat = 1\nserver = "nope"\naction = "down"\n')
    assert (err.field, err.line) == ("events[0].server", 13)


def test_the_same_seed_gives_the_same_result_and_another_seed_another(tmp_path: Path) -> None:
    text = BASE + '[[policies]]\nalgorithm = "p2c"\n[[policies]]\nalgorithm = "random"\n'
    first = summaries(tmp_path, text)
    again = summaries(tmp_path, text)
    strip = {k: {f: v for f, v in s.items() if f != "wall_seconds"} for k, s in first.items()}
    assert strip == {
        k: {f: v for f, v in s.items() if f != "wall_seconds"} for k, s in again.items()
    }
    other = summaries(tmp_path, text.replace("seed = 3", "seed = 4"))
    assert other["p2c"]["mean"] != first["p2c"]["mean"]


def test_a_server_that_goes_down_is_marked_down_and_costs_no_request(tmp_path: Path) -> None:
    # s1 dies at 10 s and comes back at 30 s; checks every second, fall 2, rise 2.
    text = BASE.replace("requests = 2000", "requests = 2500") + (
        "[health]\ninterval = 1.0\nrise = 2\nfall = 2\n"
        '[[events]]\nat = 10.0\nserver = "s1"\naction = "down"\n'
        '[[events]]\nat = 30.0\nserver = "s1"\naction = "up"\n'
    )
    got = summaries(tmp_path, text)["round_robin"]
    # GETs lost with it or refused by it go to another server: none fails.
    assert got["failed"] == 0 and got["rejected"] == 0 and got["completed"] == 2500
    assert got["retried"] > 0
    share = got["share"]
    assert isinstance(share, dict)
    # Out for about 20 s of 50: well under a quarter, but back in the rotation after.
    assert 0.05 < share["s1"] < 0.2


def test_every_server_down_rejects_with_503(tmp_path: Path) -> None:
    events = "".join(
        f'[[events]]\nat = 0.0\nserver = "s{k}"\naction = "down"\n' for k in range(1, 5)
    )
    got = summaries(tmp_path, BASE + events)["round_robin"]
    assert got["rejected"] == 2000 and got["completed"] == 0 and got["p99"] is None


def test_max_requests_queues_and_the_queue_timeout_rejects(tmp_path: Path) -> None:
    # 4 servers of 1 request at a time, at twice their capacity: the pool's queue fills.
    text = BASE.replace("rate = 50.0", "rate = 160.0").replace(
        'algorithm = "round_robin"',
        'algorithm = "least_requests"\nmax_requests = 1\nqueue_timeout = 0.2',
    )
    got = summaries(tmp_path, text)["least_requests"]
    assert got["queued"] > 0 and got["rejected"] > 0
    assert got["completed"] + got["rejected"] == 2000
    assert got["max"] is not None and got["max"] < 0.2 + 2.0  # never waited past the timeout


def test_a_slow_server_gets_less_from_a_load_aware_policy(tmp_path: Path) -> None:
    text = (
        BASE.replace("requests = 2000", "requests = 5000")
        + '[[policies]]\nalgorithm = "least_requests"\n'
        + '[[events]]\nat = 0.0\nserver = "s2"\naction = "slow"\nfactor = 10.0\n'
    )
    got = summaries(tmp_path, text)
    rr, lr = got["round_robin"], got["least_requests"]
    assert rr["share"]["s2"] == pytest.approx(0.25, abs=0.001)  # type: ignore[index]
    assert lr["share"]["s2"] < 0.15  # type: ignore[index,operator]
    assert lr["p99"] < rr["p99"]  # type: ignore[operator]


def test_a_closed_loop_sends_no_more_than_its_clients_at_once(tmp_path: Path) -> None:
    text = BASE.replace(
        'kind = "poisson"\nrate = 50.0',
        'kind = "closed"\nclients = 3\nthink = { dist = "constant", value = 0.1 }',
    ).replace('"exponential", mean = 0.05', '"constant", value = 0.05')
    got = summaries(tmp_path, text)["round_robin"]
    # 3 clients, each one request per 0.15 s, never queued: every latency is 0.05 s.
    assert got["completed"] == 2000
    assert got["max"] == pytest.approx(0.05) and got["p50"] == pytest.approx(0.05)
    assert got["throughput"] == pytest.approx(3 / 0.15, rel=0.01)


def test_a_replay_keeps_recorded_arrivals_and_service_times(tmp_path: Path) -> None:
    lines = [
        '{"time": "2026-11-24T14:00:00Z", "response_time": 0.5, "duration": 9}',
        '{"time": "2026-11-24T14:00:00.1Z", "duration": 0.25}',
        '{"time": "2026-11-24T14:00:10+00:00", "response_time": 1.0}',
    ]
    (tmp_path / "access.jsonl").write_text("\n".join(lines) + "\n")
    text = (
        'seed = 1\n[load]\nkind = "replay"\nlog = "access.jsonl"\n'
        '[[servers]]\nname = "only"\n[[policies]]\nalgorithm = "first"\n'
    )
    got = summaries(tmp_path, text)["first"]
    # One server, one at a time: the second waits 0.4 s behind the first, then takes 0.25.
    assert got["completed"] == 3
    assert got["p50"] == pytest.approx(0.65) and got["max"] == pytest.approx(1.0)


def test_a_rate_schedule_changes_the_arrival_rate(tmp_path: Path) -> None:
    text = BASE.replace(
        "rate = 50.0", "schedule = [{ at = 0, rate = 10.0 }, { at = 10, rate = 60.0 }]"
    )
    text = text.replace("requests = 2000", "requests = 700")
    got = summaries(tmp_path, text)["round_robin"]
    # About 100 in the first 10 s, the other 600 in about 10 s more (and a short drain).
    assert 18.0 < got["simulated_seconds"] < 22.5  # type: ignore[operator]


def test_weights_share_the_requests_as_in_a_pool(tmp_path: Path) -> None:
    text = BASE.replace("count = 4", 'name = "big"\nweight = 3') + (
        '[[servers]]\nname = "small"\nservice = { dist = "constant", value = 0.01 }\n'
    )
    got = summaries(tmp_path, text)["round_robin"]
    assert got["share"] == {"big": 0.75, "small": 0.25}


def test_a_schedule_that_stops_ends_the_run_with_fewer_requests(tmp_path: Path) -> None:
    text = (
        BASE.replace("rate = 50.0", "schedule = [{ at = 0, rate = 50.0 }, { at = 2, rate = 0.0 }]")
        + '[[events]]\nat = 1.0\nserver = "s1"\naction = "down"\n'
    )  # probes run for ever
    got = summaries(tmp_path, text)["round_robin"]
    assert 50 < got["completed"] < 150


@pytest.mark.parametrize("name", ["slow-server.toml", "replay.toml"])
def test_the_examples_run(name: str) -> None:
    scenario = load_scenario(Path(__file__).resolve().parents[2] / "examples" / "simulate" / name)
    scenario = replace(scenario, requests=min(scenario.requests, 2000))
    results = simulate(scenario, Options(progress=False))
    assert [r.algorithm for r in results] == ["round_robin", "least_requests", "p2c"]
    assert all(r.completed == scenario.requests for r in results)
    # Round robin gives every server the same share (to one request), whatever its speed.
    assert max(results[0].served) - min(results[0].served) <= 1


def test_slow_start_ramps_a_server_back_in_on_simulated_time(tmp_path: Path) -> None:
    # s1 is down from 10 s to 20 s of a 60 s run; once checks bring it back, slow start
    # ramps it from 10% of its weight over 5 simulated seconds (a ramp read from the wall
    # clock would hold it near 10% for the rest of the run, a share near 0.15).
    text = (
        "seed = 2\nrequests = 1200\n[load]\nrate = 20.0\n"
        '[[servers]]\ncount = 2\nservice = { dist = "exponential", mean = 0.01 }\n'
        "[health]\ninterval = 0.5\nrise = 1\nfall = 1\n"
        '[[policies]]\nalgorithm = "round_robin"\nname = "plain"\n'
        '[[policies]]\nalgorithm = "round_robin"\nslow_start = 5\nname = "ramped"\n'
        '[[events]]\nat = 10.0\nserver = "s1"\naction = "down"\n'
        '[[events]]\nat = 20.0\nserver = "s1"\naction = "up"\n'
    )
    got = summaries(tmp_path, text)
    plain = got["plain"]["share"]["s1"]  # type: ignore[index]
    ramped = got["ramped"]["share"]["s1"]  # type: ignore[index]
    assert 0.3 < ramped < plain < 0.45  # type: ignore[operator]
