"""What ``llm-marl train`` prints at the end of a run: its outputs, scores, how to resume."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llm_marl.baselines.config import TrainConfig
from llm_marl.baselines.run_log import METRICS_FILE, quarter_means

__all__ = ["interrupted_lines", "plural", "resume_command", "summary_lines"]

_DEFAULT_ALGO = "magrpo"
_DEFAULT_OUTPUT = "runs"


def plural(count: int, noun: str) -> str:
    """``"1 step"``, ``"2 steps"``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def summary_lines(
    run_dir: Path,
    metrics: Sequence[Mapping[str, Any]],
    checkpoint: Path | None,
    plot: Path | None,
) -> list[str]:
    """The lines printed after a run: where its outputs went, the last and evaluation scores."""
    lines = [
        f"run:        {run_dir}",
        f"metrics:    {run_dir / METRICS_FILE} ({plural(len(metrics), 'step')})",
        f"checkpoint: {checkpoint if checkpoint is not None else 'none'}",
        f"plot:       {plot if plot is not None else 'none'}",
    ]
    if not metrics:
        return lines
    reward = metrics[-1]["team_reward_mean"]  # none: every task of the step had a sandbox error
    lines.append(
        f"last step:  team_reward_mean={'none' if reward is None else format(reward, '.3f')}"
    )
    evaluated = [r for r in metrics if r.get("eval/team_reward_mean") is not None]
    if evaluated:
        last = evaluated[-1]
        tasks = last.get("eval/num_tasks")
        on = f" on {plural(int(tasks), 'test task')}" if tasks else ""
        copy = " of the bfloat16 copy" if last.get("eval/bfloat16") else ""
        lines.append(
            f"evaluation: eval/team_reward_mean={last['eval/team_reward_mean']:.3f} at step "
            f"{last['step']} (greedy answers{copy}{on})"
        )
    if sum(r["team_reward_mean"] is not None for r in metrics) >= 4:
        first_q, last_q = quarter_means(metrics)
        lines.append(
            f"team reward, first quarter of steps {first_q:.3f} -> last quarter {last_q:.3f} "
            f"({last_q - first_q:+.3f})"
        )
    return lines


def resume_command(algo: str, config: TrainConfig) -> str:
    """The command that continues the run of ``config`` (its saved settings supply the rest)."""
    words = ["llm-marl", "train"]
    if algo != _DEFAULT_ALGO:
        words += ["--algo", algo]
    if config.output_dir != _DEFAULT_OUTPUT:
        words += ["--output-dir", config.output_dir]
    words += ["--run-name", config.name, "--resume"]
    return shlex.join(words)


def interrupted_lines(step: int, checkpoint: Path | None, command: str) -> list[str]:
    """The lines after a Ctrl-C: the step reached and how to go on."""
    if checkpoint is None:
        return [
            f"interrupted at step {step}, before the first checkpoint: nothing to resume; "
            "start the run again with --overwrite"
        ]
    saved = int(checkpoint.name.removeprefix("step-"))  # checkpoints are step-NNNNNN
    at = f"step {step}" if saved == step else f"step {step} (newest checkpoint: step {saved})"
    return [f"interrupted at {at}; resume with: {command}"]
