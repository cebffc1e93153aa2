"""The speed of `rota simulate`: one million requests over 100 servers, per policy.

    python -m bench.simulate_speed                      the figure of docs/performance.md
    ROTA_PURE_PYTHON=1 python -m bench.simulate_speed   the same, policies as pure Python

bench/simulate/million.toml: Poisson arrivals at 90/s, 100 servers of one slot with
exponential service times of mean 1 s (load 0.9), round robin, random, least requests and
p2c in turn. Prints each policy's wall and CPU seconds: on a shared machine the wall
figure moves with the other jobs, the CPU figure much less.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.machine import require_current_build
from rota import native
from rota.simulate.engine import Simulation
from rota.simulate.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parent / "simulate" / "million.toml"


def main() -> int:
    require_current_build("bench.simulate_speed")
    scenario = load_scenario(SCENARIO)
    print(f"{scenario.requests} requests, {len(scenario.servers)} servers; {native.describe()}")
    for run in scenario.policies:
        wall = time.perf_counter()
        cpu = time.process_time()
        result = Simulation(scenario, run).run()
        print(
            f"{run.label:<16} {time.perf_counter() - wall:6.1f} s wall "
            f"{time.process_time() - cpu:6.1f} s CPU  ({result.completed} completed)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
