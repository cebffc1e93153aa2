"""`rota simulate SCENARIO.toml`: load, estimate, run each policy, print (and plot).

Exit status: 0 done; 2 a scenario that cannot run (the line names the file, field and
line), a run that would take too long without `--max-requests`, or `--plot` without
matplotlib.
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rota.simulate.engine import Simulation
from rota.simulate.results import Result, table
from rota.simulate.scenario import PolicyRun, Scenario, ScenarioError, load_scenario

# Seconds of this machine's CPU per simulated request, by what a pick costs: a draw (random,
# p2c, round robin's cursor) or a scan of every server (least_requests, first, a custom
# class, which is handed the list of servers). Measured with pure Python on the 2-core VM
# (docs/performance.md); a compiled build is faster, so the estimate errs long.
PER_REQUEST = 15e-6
PER_SERVER_SCANNED = 0.08e-6
SCANNING = ("least_requests", "first", "hash")
TOO_LONG = 1800.0  # seconds: past this, ask for --max-requests
PROGRESS_AFTER = 10.0  # seconds of estimated run: show progress even off a terminal
PROGRESS_TTY_AFTER = 2.0  # on a terminal, for any run longer than a blink


@dataclass(frozen=True, slots=True)
class Options:
    max_requests: int | None = None
    seed: int | None = None
    as_json: bool = False
    plot: Path | None = None
    progress: bool | None = None  # None: for a run of seconds on a terminal, else long ones


def per_request(run: PolicyRun, servers: int) -> float:
    algorithm = run.pool.algorithm
    if algorithm in SCANNING or ":" in algorithm:
        return PER_REQUEST + PER_SERVER_SCANNED * servers
    return PER_REQUEST


def estimate(scenario: Scenario) -> float:
    """Seconds the whole run should take here, before it starts."""
    n = len(scenario.servers)
    return scenario.requests * sum(per_request(run, n) for run in scenario.policies)


def human(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def too_long(scenario: Scenario) -> str | None:
    """The message refusing a run that would take too long, or None."""
    expected = estimate(scenario)
    if expected <= TOO_LONG:
        return None
    fits = int(scenario.requests * TOO_LONG / expected)
    return (
        f"{scenario.source}: requests: {scenario.requests} requests x "
        f"{len(scenario.policies)} policies would take about {human(expected)} here; "
        f"give --max-requests N to simulate fewer (--max-requests {fits} takes about "
        f"{human(TOO_LONG)}), or --max-requests {scenario.requests} to run it all anyway"
    )


def simulate(scenario: Scenario, options: Options) -> list[Result]:
    """Run every policy of the scenario; the results in the scenario's order."""
    expected = estimate(scenario)
    show = options.progress
    if show is None:
        tty = sys.stderr.isatty()
        show = expected > (PROGRESS_TTY_AFTER if tty else PROGRESS_AFTER)
    results: list[Result] = []
    for run in scenario.policies:
        if ":" in run.pool.algorithm:
            # A class of the user's own may draw from the random module: same seed, same run.
            random.seed(f"{scenario.seed}/custom")
        bar = None
        if show:
            from rota.simulate.progress import Bar

            bar = Bar(run.label, scenario.requests)
        started = time.perf_counter()
        result = Simulation(scenario, run, bar).run()
        result.wall = time.perf_counter() - started
        results.append(result)
    return results


def report(scenario: Scenario, results: list[Result]) -> dict[str, Any]:
    return {
        "scenario": scenario.source,
        "seed": scenario.seed,
        "requests": scenario.requests,
        "servers": len(scenario.servers),
        "policies": [r.summary() for r in results],
    }


def main(path: Path, options: Options) -> int:
    try:
        scenario = load_scenario(path)
    except ScenarioError as exc:
        print(f"rota simulate: {exc}", file=sys.stderr)
        return 2
    if options.seed is not None:
        scenario = replace(scenario, seed=options.seed)
    if options.max_requests is not None:
        scenario = replace(scenario, requests=min(scenario.requests, options.max_requests))
    else:
        refusal = too_long(scenario)
        if refusal is not None:
            print(f"rota simulate: {refusal}", file=sys.stderr)
            return 2
    if options.plot is not None:
        from rota.simulate.plots import PlotError, _pyplot

        try:
            _pyplot()  # before the run, not after it
        except PlotError as exc:
            print(f"rota simulate: {exc}", file=sys.stderr)
            return 2
    results = simulate(scenario, options)
    out = report(scenario, results)
    if options.as_json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"{scenario.source}: {scenario.requests} requests, {len(scenario.servers)} servers, "
            f"seed {scenario.seed}\n"
        )
        sys.stdout.write(table(out["policies"]))
    if options.plot is not None:
        from rota.simulate.plots import write_plots

        for written in write_plots(results, options.plot):
            print(f"rota simulate: wrote {written}", file=sys.stderr)
    return 0
