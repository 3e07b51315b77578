"""Warnings during a run: a CPU run that will take hours, steps whose groups teach nothing."""

from __future__ import annotations

from typing import Any

import pytest

from llm_marl.baselines import MAGRPOConfig, RunWarning
from llm_marl.baselines.magrpo import MAGRPOTrainer
from llm_marl.baselines.run_watch import EQUAL_STEPS, RunWatch, format_duration


def test_a_cpu_run_of_hours_is_announced_with_its_expected_time() -> None:
    config = MAGRPOConfig(model="embedded", num_steps=40)  # the paper's 256 new tokens
    watch = RunWatch(config, "cpu", first_step=0)
    with pytest.warns(RunWarning, match="up to 256 new tokens per agent"):
        watch.start()
    with pytest.warns(RunWarning, match=r"at 8 min a step on CPU, the remaining 39 steps take "
                      r"about 5.4 h; Ctrl-C stops after the current step"):  # fmt: skip
        watch.after_step(1, {"step_seconds": 496.0})


def test_short_or_gpu_runs_are_not_warned_about(recwarn: pytest.WarningsRecorder) -> None:
    RunWatch(MAGRPOConfig(model="embedded", max_new_tokens=64), "cpu", 0).start()
    RunWatch(MAGRPOConfig(model="embedded"), "cuda:0", 0).after_step(1, {"step_seconds": 500.0})
    RunWatch(MAGRPOConfig(num_steps=40), "cpu", 0).after_step(1, {"step_seconds": 20.0})
    assert not [w for w in recwarn if issubclass(w.category, RunWarning)]


def test_durations_read_naturally() -> None:
    assert [format_duration(s) for s in (45, 720, 19440)] == ["45 s", "12 min", "5.4 h"]


def test_steps_that_teach_nothing_are_warned_about_once_with_the_likely_cause(
    fast: dict[str, Any],
) -> None:
    """Targets the tiny model never writes: every reward 0, every group equal."""
    settings = {**fast, "max_new_tokens": 4, "env_kwargs": {"targets": "\u00e9"}}
    config = MAGRPOConfig(**settings, num_steps=EQUAL_STEPS + 2)
    with pytest.warns(RunWarning) as caught:
        MAGRPOTrainer(config).train()
    stalls = [str(w.message) for w in caught if "rewards were equal" in str(w.message)]
    assert stalls == [
        f"for {EQUAL_STEPS} steps in a row every group's rewards were equal "
        "(equal_reward_groups 1.0), so every advantage is zero and nothing is learned; likely "
        "cause: 100% of the answers were cut at --max-new-tokens 4, too few to finish one: "
        "raise it"
    ]
