"""Run logs: JSON lines that survive a kill, TensorBoard mirroring, the reward plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llm_marl.baselines import run_log
from llm_marl.baselines.run_log import (
    RunLog,
    moving_mean,
    quarter_means,
    read_metrics,
    reward_figure,
)


def test_a_line_cut_short_at_the_end_is_skipped_and_one_inside_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "team_reward_mean": 0.5}\n{"step": 2, "team_rew')
    assert read_metrics(path) == [{"step": 1, "team_reward_mean": 0.5}]
    path.write_text('{"step": 1\n{"step": 2, "team_reward_mean": 0.5}\n')
    with pytest.raises(ValueError, match="line 1 is not JSON"):
        read_metrics(path)


def test_resuming_keeps_the_records_up_to_the_checkpoint(tmp_path: Path) -> None:
    log = RunLog(tmp_path)
    for step in (1, 2, 3):
        log.log(step, {"team_reward_mean": float(step)})
    log.log_samples(3, [{"agent": "a_0", "response": "hi"}])
    RunLog(tmp_path, keep_until_step=2)
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2]
    assert read_metrics(tmp_path / "samples.jsonl") == []
    assert not list(tmp_path.glob(".*partial"))


def test_metrics_are_mirrored_to_tensorboard_when_it_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scalars: list[tuple[str, Any, int]] = []

    class Writer:
        def add_scalar(self, name: str, value: Any, step: int) -> None:
            scalars.append((name, value, step))

        def flush(self) -> None: ...

        def close(self) -> None: ...

    monkeypatch.setattr(run_log, "_tensorboard", lambda folder, first_step: Writer())
    RunLog(tmp_path).log(4, {"team_reward_mean": 1.5, "nan": float("nan")})
    assert ("team_reward_mean", 1.5, 4) in scalars
    assert read_metrics(tmp_path / "metrics.jsonl") == [
        {"step": 4, "team_reward_mean": 1.5, "nan": None}  # JSON has no NaN
    ]


def test_the_plot_is_a_png_and_quarters_need_four_steps(tmp_path: Path) -> None:
    log = RunLog(tmp_path)
    for step in range(1, 9):
        metrics = {"team_reward_mean": step / 8}
        if step == 8:
            metrics["eval/team_reward_mean"] = 0.9
        log.log(step, metrics)
    assert log.plot().read_bytes()[:4] == b"\x89PNG"
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert quarter_means(records) == pytest.approx((1.5 / 8, 7.5 / 8))
    with pytest.raises(ValueError, match="at least 4 steps"):
        quarter_means(records[:3])


@pytest.mark.parametrize("num_steps", [1, 2, 10_000])
def test_the_plot_reads_well_from_one_step_to_ten_thousand(num_steps: int) -> None:
    """Integer step ticks, a y-axis from the data (not below 0 for rewards >= 0), a title
    with the step count, and a moving mean no longer than the run."""
    import matplotlib.pyplot as plt

    records = [
        {"step": s, "team_reward_mean": 0.4 + 0.1 * (s % 3), "eval/team_reward_mean": 0.5}
        for s in range(1, num_steps + 1)
    ]
    fig = reward_figure(records, title="Team reward of run r")
    (ax,) = fig.axes
    ax.figure.canvas.draw()
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    values = [v for r in records for k, v in r.items() if k != "step"]
    low, high = ax.get_ylim()
    assert 0 <= low <= min(values) and max(values) <= high < 1
    noun = "step" if num_steps == 1 else "steps"
    assert ax.get_title() == f"Team reward of run r ({num_steps} {noun})"
    labels = [line.get_label() for line in ax.get_lines()]
    means = [label for label in labels if label.startswith("moving mean")]
    if num_steps < 5:
        assert means == []
    else:
        (label,) = means
        assert int(label.split("(")[1].split()[0]) <= num_steps
    plt.close(fig)


def test_the_moving_mean_averages_the_window_before_each_step() -> None:
    assert moving_mean([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]
