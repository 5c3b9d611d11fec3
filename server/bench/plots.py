"""PNG charts of a run (matplotlib, Agg backend): latency percentiles and rates over time."""

from __future__ import annotations

import math
from pathlib import Path

from server.bench.report import ScenarioResult


def write_plots(directory: Path, results: list[ScenarioResult]) -> list[Path]:
    """One latency chart and one timeline chart per scenario that has them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for result in results:
        distributions = {k: d for k, d in result.distributions.items() if d.get("count")}
        if distributions:
            fig, ax = plt.subplots(figsize=(7, 4))
            stats = ("p50", "p90", "p99", "max")
            width = 0.8 / len(distributions)
            for i, (name, summary) in enumerate(distributions.items()):
                values = [summary.get(s) or 0.0 for s in stats]
                values = [0.0 if math.isnan(v) else v for v in values]
                positions = [x + i * width for x in range(len(stats))]
                bars = ax.bar(positions, values, width, label=f"{name} (n={int(summary['count']):,})")
                ax.bar_label(bars, fmt="%.1f", fontsize=7)
            ax.set_xticks([x + width * (len(distributions) - 1) / 2 for x in range(len(stats))], stats)
            ax.set_ylabel("milliseconds")
            ax.set_title(f"{result.scenario}: latency percentiles")
            ax.legend(fontsize=8)
            fig.tight_layout()
            path = directory / f"bench-{result.scenario}-latency.png"
            fig.savefig(path, dpi=100)
            plt.close(fig)
            written.append(path)
        timelines = {k: s for k, s in result.timelines.items() if s}
        if timelines:
            fig, axes = plt.subplots(len(timelines), 1, figsize=(7, 2.6 * len(timelines)), squeeze=False)
            for ax, (name, series) in zip(axes[:, 0], timelines.items()):
                ax.plot([t for t, _ in series], [v for _, v in series], drawstyle="steps-mid")
                ax.set_ylabel(name, fontsize=8)
                ax.grid(alpha=0.3)
            axes[-1, 0].set_xlabel("seconds since start")
            axes[0, 0].set_title(f"{result.scenario}: over time")
            fig.tight_layout()
            path = directory / f"bench-{result.scenario}-timeline.png"
            fig.savefig(path, dpi=100)
            plt.close(fig)
            written.append(path)
    return written
