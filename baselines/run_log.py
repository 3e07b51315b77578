"""A run's outputs besides checkpoints: ``metrics.jsonl``, ``samples.jsonl``, TensorBoard
(when installed) and the reward curve ``reward.png``."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "METRICS_FILE",
    "PLOT_FILE",
    "SAMPLES_FILE",
    "RunLog",
    "moving_mean",
    "plot_rewards",
    "quarter_means",
    "read_metrics",
    "reward_figure",
    "write_atomically",
]

METRICS_FILE = "metrics.jsonl"
SAMPLES_FILE = "samples.jsonl"
PLOT_FILE = "reward.png"


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The step records of a ``metrics.jsonl`` file (an empty list when it is missing).

    A last line cut short (a run killed while writing it) is skipped.
    """
    if not path.is_file():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    records = []
    for number, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number != len(lines) - 1:
                raise ValueError(f"{path}: line {number + 1} is not JSON: {line[:80]!r}") from None
    return records


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` in one step: a kill leaves the old file or the new one."""
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


class RunLog:
    """Appends one JSON line per step; mirrors scalars to TensorBoard when it is installed."""

    def __init__(self, run_dir: Path, *, keep_until_step: int | None = None) -> None:
        """Open the logs of ``run_dir``; ``keep_until_step`` drops records after that step
        (a resumed run rewrites what came after its checkpoint)."""
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        for name in (METRICS_FILE, SAMPLES_FILE):
            path = run_dir / name
            kept = [r for r in read_metrics(path) if r["step"] <= (keep_until_step or 0)]
            write_atomically(path, "".join(json.dumps(r) + "\n" for r in kept))
        self._writer = _tensorboard(run_dir / "tensorboard", (keep_until_step or 0) + 1)

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Append the metrics of ``step``."""
        record = {"step": step, **{k: _finite(v) for k, v in metrics.items()}}
        with (self.run_dir / METRICS_FILE).open("a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())  # a step's record survives a crash that follows it
        if self._writer is not None:
            for name, value in metrics.items():
                if isinstance(value, int | float):
                    self._writer.add_scalar(name, value, step)
            self._writer.flush()

    def log_samples(self, step: int, samples: Sequence[Mapping[str, Any]]) -> None:
        """Append sample prompts and responses of ``step``."""
        with (self.run_dir / SAMPLES_FILE).open("a") as f:
            f.write(json.dumps({"step": step, "samples": list(samples)}) + "\n")

    def plot(self) -> Path:
        """Draw ``reward.png`` from ``metrics.jsonl``, titled with the run's name; its path."""
        records = read_metrics(self.run_dir / METRICS_FILE)
        title = f"Team reward of run {self.run_dir.name}"
        return plot_rewards(records, self.run_dir / PLOT_FILE, title=title)

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self._writer is not None:
            self._writer.close()


def _tensorboard(folder: Path, first_step: int) -> Any:
    """A TensorBoard writer that drops events from ``first_step`` on, or None."""
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(folder), purge_step=first_step)


def plot_rewards(
    records: Sequence[Mapping[str, Any]],
    path: Path,
    window: int | None = None,
    title: str = "Team reward",
) -> Path:
    """The team reward per step (its moving mean, test-split evaluations) as a PNG at
    ``path`` (see :func:`reward_figure`)."""
    import matplotlib.pyplot as plt

    fig = reward_figure(records, window, title)
    fig.savefig(path)
    plt.close(fig)
    return path


def reward_figure(
    records: Sequence[Mapping[str, Any]], window: int | None = None, title: str = "Team reward"
) -> Any:
    """The matplotlib figure of :func:`plot_rewards`.

    Readable from 1 step to many thousands: integer step ticks, a y-axis fitted to the data,
    markers on short runs, and a moving mean (``window`` steps; default about 2% of the run,
    at least 5) only when the run is longer than its window.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    steps = [r["step"] for r in records if r.get("team_reward_mean") is not None]
    rewards = [r["team_reward_mean"] for r in records if r.get("team_reward_mean") is not None]
    evals = [
        (r["step"], r["eval/team_reward_mean"])
        for r in records
        if r.get("eval/team_reward_mean") is not None
    ]
    window = window or max(5, len(rewards) // 50)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    marker = "o" if len(rewards) <= 50 else None
    ax.plot(steps, rewards, color="0.6", lw=1, marker=marker, ms=4, label="team reward (train)")
    if len(rewards) > window:
        ax.plot(steps, moving_mean(rewards, window), color="C0", lw=2,
                label=f"moving mean ({window} steps)")  # fmt: skip
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", color="C1", label="team reward (test split)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_ylim(*_y_limits(rewards + [value for _, value in evals]))
    if 0 < len(steps) < 10:  # matplotlib would centre a lone point on fractional ticks
        ax.set_xlim(min(steps) - 0.5, max(steps) + 0.5)
    ax.set_title(f"{title} ({len(rewards)} step{'' if len(rewards) == 1 else 's'})")
    ax.set_xlabel("step")
    ax.set_ylabel("team reward")
    ax.grid(alpha=0.3)
    if rewards:
        ax.legend(loc="best")
    fig.tight_layout()
    return fig


def moving_mean(values: Sequence[float], window: int) -> list[float]:
    """The mean of each value and up to ``window - 1`` values before it."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _y_limits(values: Sequence[float]) -> tuple[float, float]:
    """Bounds around ``values`` with a margin, never below 0 when no value is negative."""
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    margin = 0.08 * (high - low) if high > low else 0.1 * max(abs(high), 1.0)
    bottom = low - margin
    if low >= 0:
        bottom = max(0.0, bottom)
    return bottom, high + margin


def quarter_means(records: Sequence[Mapping[str, Any]]) -> tuple[float, float]:
    """Mean ``team_reward_mean`` of the first and of the last quarter of the steps that have
    one (a step whose every task had a sandbox error has none)."""
    rewards = [float(r["team_reward_mean"]) for r in records if r["team_reward_mean"] is not None]
    if len(rewards) < 4:
        raise ValueError(f"quarters need at least 4 steps, got {len(rewards)}")
    quarter = len(rewards) // 4
    return sum(rewards[:quarter]) / quarter, sum(rewards[-quarter:]) / quarter
