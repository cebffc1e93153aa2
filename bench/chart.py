"""The PNG chart: req/s and CPU per request, per workload and contender."""

from __future__ import annotations

from pathlib import Path

from bench.report import Report
from bench.stats import Summary
from bench.wrkrun import WORKLOADS


def _rps(s: Summary) -> float | None:
    return s.rps


def _cpu(s: Summary) -> float | None:
    return s.cpu_us_per_req


def write_chart(report: Report, path: Path) -> None:
    # Imported here: matplotlib is installed by the bench itself, not a dev dependency, and
    # Agg must be chosen before pyplot is imported (no display on a server).
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = report.table()
    shown = [
        (key, label)
        for key, label, _, _ in report.contenders
        if any((key, w.key) in table for w in WORKLOADS)
    ]
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5))
    # One colour per contender in both panels, even where a panel has no bar for it.
    palette = plt.get_cmap("tab10")
    width = 0.8 / max(len(shown), 1)
    panels = (
        (axes[0], "requests/s (median)", _rps),
        (axes[1], "load balancer CPU µs per request (median)", _cpu),
    )
    for ax, title, metric in panels:
        for i, (key, label) in enumerate(shown):
            xs, ys = [], []
            for j, w in enumerate(WORKLOADS):
                summary = table.get((key, w.key))
                value = metric(summary) if summary is not None else None
                if value is not None:
                    xs.append(j + (i - (len(shown) - 1) / 2) * width)
                    ys.append(value)
            if ys:
                ax.bar(xs, ys, width, label=label, color=palette(i % 10))
        ax.set_title(title)
        ax.set_xticks(range(len(WORKLOADS)), [w.label for w in WORKLOADS], fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    machine = report.machine
    fig.suptitle(
        f"rota vs HAProxy vs nginx, {machine.get('nproc', '?')} CPUs ({machine.get('CPU', '?')})"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
