"""Run logs: JSON lines that survive a kill, TensorBoard mirroring, the reward plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llm_marl.baselines import run_log
from llm_marl.baselines.run_log import RunLog, quarter_means, read_metrics


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
