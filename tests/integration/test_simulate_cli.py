"""`rota simulate` as a user runs it: the table, --json, the PNGs, refusals with exit 2,
and --real with real `rota backend` and `rota lb` processes on 127.0.0.1 (short, bounded)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.http import get
from tests.support.procs import REPO, free_port, rota

SCENARIO = """seed = 5
requests = 3000
[load]
rate = 40.0
[[servers]]
count = 3
service = { dist = "exponential", mean = 0.02 }
concurrency = 2
[[servers]]
name = "slow"
service = { dist = "lognormal", mean = 0.1, sigma = 0.5 }
concurrency = 2
[[policies]]
algorithm = "round_robin"
[[policies]]
algorithm = "p2c"
"""


def simulate(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rota", "simulate", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def scenario(tmp_path: Path, text: str = SCENARIO) -> str:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return str(path)


def test_json_has_one_entry_per_policy_with_the_issue_keys(tmp_path: Path) -> None:
    done = simulate(scenario(tmp_path), "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert [p["algorithm"] for p in out["policies"]] == ["round_robin", "p2c"]
    for entry in out["policies"]:
        for key in ("completed", "mean", "p50", "p90", "p99", "p999", "max", "share"):
            assert key in entry, key
        assert entry["completed"] == 3000
        assert entry["p50"] <= entry["p90"] <= entry["p99"] <= entry["p999"] <= entry["max"]
        assert set(entry["share"]) == {"s1", "s2", "s3", "slow"}
        assert sum(entry["share"].values()) == pytest.approx(1.0)
    assert out["policies"][1]["share"]["slow"] < out["policies"][0]["share"]["slow"]


def test_the_table_names_each_policy_and_server(tmp_path: Path) -> None:
    done = simulate(scenario(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "p99.9" in done.stdout and "rejected" in done.stdout
    assert "round_robin: s1 25.0%  s2 25.0%  s3 25.0%  slow 25.0%" in done.stdout
    assert "round_robin:" not in done.stderr  # no progress off a terminal for a short run


def test_a_bad_scenario_exits_2_naming_file_field_and_line(tmp_path: Path) -> None:
    path = scenario(tmp_path, SCENARIO.replace("rate = 40.0", "rate = -1.0"))
    done = simulate(path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"rota simulate: {path}:4: load.rate: expected a number > 0, got -1.0"
    )


def test_a_run_of_hours_asks_for_max_requests_before_starting(tmp_path: Path) -> None:
    path = scenario(tmp_path, SCENARIO.replace("requests = 3000", "requests = 10000000000"))
    started = time.monotonic()
    done = simulate(path)
    assert done.returncode == 2
    assert " h here; give --max-requests N" in done.stderr
    assert time.monotonic() - started < 30  # refused up front, not after running
    capped = simulate(path, "--max-requests", "500", "--json")
    assert capped.returncode == 0, capped.stderr
    assert json.loads(capped.stdout)["policies"][0]["completed"] == 500


def test_plot_writes_the_two_pngs(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    done = simulate(scenario(tmp_path), "--plot", str(tmp_path / "plots"))
    assert done.returncode == 0, done.stderr
    for name in ("latency-cdf.png", "in-flight.png"):
        data = (tmp_path / "plots" / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


def test_plot_without_matplotlib_says_how_to_get_it(tmp_path: Path) -> None:
    # A sitecustomize-free way to hide it: a module named matplotlib that fails to import.
    fake = tmp_path / "hide"
    fake.mkdir()
    (fake / "matplotlib.py").write_text("raise ImportError('hidden for the test')\n")
    path = scenario(tmp_path)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from rota.cli import main; sys.exit(main(sys.argv[1:]))",
            "simulate",
            path,
            "--plot",
            str(tmp_path / "plots"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "PYTHONPATH": f"{fake}:{REPO / 'src'}:{REPO}"},
    )
    assert done.returncode == 2
    assert "pip install 'rota[simulate]'" in done.stderr
    assert not (tmp_path / "plots").exists()


def test_backend_takes_a_service_time_and_a_concurrency(tmp_path: Path) -> None:
    port = free_port()
    proc = rota(
        "backend",
        "--port",
        str(port),
        "--name",
        "b",
        "--service-time",
        "constant:0.3",
        "--concurrency",
        "1",
    )
    try:
        proc.wait_for("listening on")
        answer = get(port, "/")
        assert answer.status == 200 and answer.body == b"Hello from b\n"
        assert get(port, "/health").status == 200  # checks are never queued
    finally:
        proc.stop()
    bad = subprocess.run(
        [sys.executable, "-m", "rota", "backend", "--port", "1", "--service-time", "normal:1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert (
        bad.returncode == 2 and "--service-time" in bad.stderr and "exponential:MEAN" in bad.stderr
    )


def test_real_runs_the_scenario_on_loopback_beside_the_simulation(tmp_path: Path) -> None:
    text = SCENARIO.replace("rate = 40.0", "rate = 30.0").replace("count = 3", "count = 1")
    done = simulate(scenario(tmp_path, text), "--real", "--duration", "2", "--json", timeout=90)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert [p["algorithm"] for p in out["policies"]] == ["round_robin", "p2c"]
    for entry in out["policies"]:
        measured = entry["measured"]
        assert measured["sent"] > 0 and measured["errors"] == 0
        assert measured["completed"] == measured["sent"]
        assert set(measured["share"]) <= {"s1", "slow"}
        assert entry["simulated"]["completed"] == max(
            p["measured"]["sent"] for p in out["policies"]
        )
