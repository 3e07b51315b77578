"""``plot.png`` of the results: the primary metric per method, and the training curves.

Left: one bar per method (mean over seeds) with its confidence interval as an error bar.
Right: ``team_reward_mean`` per step of every trained method, averaged over its seeds.
matplotlib with the Agg backend (no display needed); no torch.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llm_marl.baselines.results_table import ResultsTable, column_label

__all__ = ["plot_results", "training_curves"]


def training_curves(
    cells: Sequence[Mapping[str, Any]], methods: Sequence[str]
) -> dict[str, list[tuple[int, float]]]:
    """Per trained method (in ``methods`` order): (step, team_reward_mean averaged over seeds).

    A step counts the seeds that logged a reward there; steps without any are left out.
    """
    curves = {}
    for method in methods:
        per_step: dict[int, list[float]] = defaultdict(list)
        for cell in cells:
            if cell["method"] != method or not cell["train"]:
                continue
            for record in cell["train"].get("metrics", []):
                if record.get("team_reward_mean") is not None:
                    per_step[int(record["step"])].append(float(record["team_reward_mean"]))
        if per_step:
            curves[method] = [(s, statistics.fmean(v)) for s, v in sorted(per_step.items())]
    return curves


def plot_results(
    result: ResultsTable,
    curves: Mapping[str, Sequence[tuple[int, float]]],
    path: Path,
) -> Path:
    """Draws the bars of ``result``'s primary metric and the ``curves`` into the PNG ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (bars, lines) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    names = [row.method for row in result.rows]
    values = [row.values[result.primary] for row in result.rows]
    means = [0.0 if math.isnan(v.mean) else v.mean for v in values]
    # Error bars as distances below and above the mean; none where the interval is undefined.
    errors = [
        [0.0 if math.isnan(v.low) else v.mean - v.low for v in values],
        [0.0 if math.isnan(v.high) else v.high - v.mean for v in values],
    ]
    color = {name: f"C{i % 10}" for i, name in enumerate(names)}  # one colour per method
    colors = [color[name] for name in names]
    bars.bar(names, means, yerr=errors, capsize=4, color=colors)
    for x, v in enumerate(values):
        if math.isnan(v.mean):
            bars.annotate("n/a", (x, 0), ha="center", va="bottom")
    level = round(result.confidence * 100)
    bars.set_title(f"{column_label(result.primary)}, mean over seeds ({level}% CI)")
    bars.set_ylabel(column_label(result.primary))
    bars.tick_params(axis="x", labelrotation=30)
    bars.grid(axis="y", alpha=0.3)
    for method, points in curves.items():
        steps, rewards = zip(*points, strict=True)
        lines.plot(
            steps,
            rewards,
            marker="o" if len(steps) <= 50 else None,
            ms=3,
            color=color.get(method, "0.4"),
            label=method,
        )
    lines.set_title("Training: team reward per step (mean over seeds)")
    lines.set_xlabel("step")
    lines.set_ylabel("team_reward_mean")
    lines.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    lines.grid(alpha=0.3)
    if curves:
        lines.legend(loc="best")
    else:
        lines.annotate("no trained method", (0.5, 0.5), xycoords="axes fraction", ha="center")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
