"""The PNGs: latency CDFs side by side, and each server's in-flight requests over time.

matplotlib, from the optional extra `rota[simulate]` (docs/architecture.md says why): the
load balancer itself never imports it, and without it `--plot` says how to get it while the
table and `--json` still work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rota.simulate.results import Result

MISSING = (
    "--plot needs matplotlib: pip install 'rota[simulate]' (the table and --json work without it)"
)
CDF_POINTS = 2000  # points per curve: enough for the eye, small files


class PlotError(Exception):
    pass


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotError(MISSING) from None
    return plt


def write_plots(results: list[Result], folder: Path) -> list[Path]:
    """latency-cdf.png and in-flight.png in `folder` (created); returns their paths."""
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    cdf = folder / "latency-cdf.png"
    fig, ax = plt.subplots(figsize=(8, 5))
    for result in results:
        ordered = sorted(result.latencies)
        n = len(ordered)
        if not n:
            continue
        step = max(1, n // CDF_POINTS)
        xs = [*ordered[::step], ordered[-1]]
        ys = [i / n for i in range(0, n, step)] + [1.0]
        ax.plot([x * 1000 for x in xs], ys, label=result.algorithm)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("fraction of requests")
    ax.set_title("latency CDF by policy")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(cdf, dpi=100)
    plt.close(fig)

    flight = folder / "in-flight.png"
    rows = len(results)
    fig, axes = plt.subplots(rows, 1, figsize=(9, 2.6 * rows), squeeze=False, sharex=True)
    for ax, result in zip(axes[:, 0], results, strict=True):
        if result.in_flight:
            columns = list(zip(*result.in_flight, strict=True))  # per server
            if len(columns) <= 12:
                for name, values in zip(result.servers, columns, strict=True):
                    ax.plot(result.times, values, label=name, linewidth=0.8)
                ax.legend(fontsize=6, ncol=6, loc="upper right")
            else:  # many servers: a heat map, one row per server
                image = ax.imshow(
                    columns,
                    aspect="auto",
                    interpolation="nearest",
                    extent=(result.times[0], result.times[-1], len(columns), 0),
                )
                fig.colorbar(image, ax=ax, label="in flight")
                ax.set_ylabel("server")
        ax.set_title(f"{result.algorithm}: in-flight requests per server", fontsize=9)
    axes[-1, 0].set_xlabel("simulated time (s)")
    fig.tight_layout()
    fig.savefig(flight, dpi=100)
    plt.close(fig)
    return [cdf, flight]
