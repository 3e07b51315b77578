"""Warnings a run gives while it trains: a CPU run that will take hours, steps that teach nothing.

Each is a :class:`RunWarning` (a ``UserWarning``), so library users can filter them and the
command line prints each as one ``llm-marl train: warning: ...`` line.
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Mapping

from llm_marl.baselines.config import TrainConfig

__all__ = ["EQUAL_STEPS", "SLOW_RUN_SECONDS", "RunWarning", "RunWatch", "format_duration"]

#: Consecutive steps whose groups all had equal rewards before :class:`RunWatch` warns.
EQUAL_STEPS = 3
#: Expected remaining time above which a CPU run is announced as slow.
SLOW_RUN_SECONDS = 3600.0
#: Above this many new tokens per answer, a CPU run of a real model is warned about up front
#: (configs/demo.yaml samples 64 in about 10 s a step on two cores).
_CPU_TOKENS = 64


class RunWarning(UserWarning):
    """Something about a run the user should know: it will be slow, or it learns nothing."""


def format_duration(seconds: float) -> str:
    """``"45 s"``, ``"12 min"`` or ``"5.4 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class RunWatch:
    """Fed every step's metrics; warns (once each) about slow CPU runs and stalled learning."""

    def __init__(self, config: TrainConfig, device: str, first_step: int) -> None:
        """Watch a run of ``config`` on ``device`` whose next step is ``first_step + 1``."""
        self.config = config
        self.on_cpu = device.split(":")[0] == "cpu"
        self.first_step = first_step
        self.equal_streak = 0
        self.warned_equal = False

    def start(self) -> None:
        """Before the first step: warn when a CPU run of a real model samples long answers."""
        config = self.config
        if self.on_cpu and config.model != "tiny" and config.max_new_tokens > _CPU_TOKENS:
            _warn(
                f"on CPU, each step samples {config.num_generations} answers of up to "
                f"{config.max_new_tokens} new tokens per agent, which can take minutes per "
                f"step; the expected time is shown after the first step (--max-new-tokens "
                f"{_CPU_TOKENS}, as in configs/demo.yaml, takes well under a minute a step)"
            )

    def after_step(self, step: int, metrics: Mapping[str, float]) -> None:
        """Check the metrics of ``step`` (just finished)."""
        if step == self.first_step + 1:
            self._check_pace(step, float(metrics.get("step_seconds", 0.0)))
        if metrics.get("equal_reward_groups") == 1.0:
            self.equal_streak += 1
        else:
            self.equal_streak = 0
        if self.equal_streak >= EQUAL_STEPS and not self.warned_equal:
            self.warned_equal = True
            _warn(self._stall_message(metrics))

    def _check_pace(self, step: int, seconds: float) -> None:
        remaining = self.config.num_steps - step
        if self.on_cpu and seconds * remaining > SLOW_RUN_SECONDS:
            _warn(
                f"at {format_duration(seconds)} a step on CPU, the remaining {remaining} steps "
                f"take about {format_duration(seconds * remaining)}; Ctrl-C stops after the "
                "current step with a checkpoint and prints the command that resumes the run"
            )

    def _stall_message(self, metrics: Mapping[str, float]) -> str:
        config = self.config
        head = (
            f"for {self.equal_streak} steps in a row every group's rewards were equal "
            "(equal_reward_groups 1.0), so every advantage is zero and nothing is learned"
        )
        truncated = [v for k, v in metrics.items() if k.startswith("truncated/")]
        if truncated and statistics.fmean(truncated) >= 0.5:
            share = statistics.fmean(truncated)
            return (
                f"{head}; likely cause: {share:.0%} of the answers were cut at "
                f"--max-new-tokens {config.max_new_tokens}, too few to finish one: raise it"
            )
        return (
            f"{head}; likely causes: answers too alike (raise --temperature, now "
            f"{config.temperature}) or a reward that cannot tell them apart on these tasks"
        )


def _warn(message: str) -> None:
    warnings.warn(message, RunWarning, stacklevel=3)
