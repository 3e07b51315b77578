"""A sandbox failure never becomes a reward to learn from: its task is dropped and counted."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from toy_env import SandboxErrorEnv

import llm_marl
from llm_marl.baselines import MAGRPOConfig, MAGRPOTrainer
from llm_marl.baselines.evaluation import evaluate, evaluation_resets
from llm_marl.baselines.rollout import has_sandbox_error
from llm_marl.cli import main


def _weights(trainer: MAGRPOTrainer) -> list[torch.Tensor]:
    team = trainer.team
    return [p.detach().clone() for a in team.agents for p in team.trainable_parameters(a)]


def test_a_task_with_a_sandbox_error_gives_no_gradient_and_no_reward(
    fast: dict[str, Any],
) -> None:
    """Task 2 of step 1 fails; how its failing sandbox scores it changes nothing."""
    config = MAGRPOConfig(**fast, tasks_per_step=2, learning_rate=1e-2)
    runs = []
    for score in (0.0, 1.0):
        trainer = MAGRPOTrainer(config, env=SandboxErrorEnv({2}, failed_score=score))
        metrics, trees = trainer.train_step()
        assert [has_sandbox_error(tree) for tree in trees] == [False, True]
        runs.append((metrics, _weights(trainer)))
    (first, moved), (second, moved_too) = runs
    assert all(torch.equal(a, b) for a, b in zip(moved, moved_too, strict=True))
    assert first["sandbox_error_tasks"] == second["sandbox_error_tasks"] == 1
    assert first["team_reward_mean"] == second["team_reward_mean"]
    good = [j.team_reward for j in trees[0].joints]
    assert first["team_reward_mean"] == pytest.approx(sum(good) / len(good))


def test_a_step_whose_every_task_failed_leaves_the_parameters_alone(
    fast: dict[str, Any],
) -> None:
    trainer = MAGRPOTrainer(
        MAGRPOConfig(**fast, num_steps=2, learning_rate=1e-2),
        env=SandboxErrorEnv({1}, failed_score=1.0),
    )
    before = _weights(trainer)
    with pytest.warns(UserWarning, match=r"every task of this step \(1\) had a sandbox error"):
        metrics, _ = trainer.train_step()
    assert metrics["sandbox_error_tasks"] == 1 and math.isnan(metrics["team_reward_mean"])
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(trainer), strict=True))
    metrics, _ = trainer.train_step()  # the next task is fine: learning goes on
    assert metrics["sandbox_error_tasks"] == 0
    assert not all(torch.equal(a, b) for a, b in zip(before, _weights(trainer), strict=True))


def test_the_count_is_logged_every_step(fast: dict[str, Any]) -> None:
    config = MAGRPOConfig(**fast, num_steps=2, tasks_per_step=2)
    records = MAGRPOTrainer(config, env=SandboxErrorEnv({2, 3, 4})).train().metrics
    assert [r["sandbox_error_tasks"] for r in records] == [1, 2]
    assert records[1]["team_reward_mean"] is None  # no task left to measure


def test_the_command_line_reports_a_run_whose_last_step_learned_nothing(
    fast: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    llm_marl.register(
        "sandboxfail_v0", lambda **kwargs: SandboxErrorEnv({5}, **kwargs), override=True
    )
    argv = ["train", "--env", "sandboxfail_v0", "--model", "tiny", "--num-steps", "5"]
    argv += ["--max-new-tokens", "8", "--output-dir", fast["output_dir"], "--no-progress"]
    with pytest.warns(UserWarning, match="every task of this step"):
        assert main(argv) == 0
    out = capsys.readouterr().out
    assert "team_reward_mean=none" in out and "first quarter of steps" in out


class _FailingTaskEnv(SandboxErrorEnv):
    """Every step of the episodes on ``failing_task`` reports a sandbox failure (scored 9)."""

    def __init__(self, failing_task: str, **kwargs: Any) -> None:
        super().__init__(set(), failed_score=9.0, **kwargs)
        self.failing_task = failing_task

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        observations, infos = super().reset(seed=seed, options=options)
        self._failing = self._task.task_id == self.failing_task
        return observations, infos


def test_evaluation_leaves_out_an_episode_the_sandbox_could_not_judge(
    fast: dict[str, Any],
) -> None:
    """Task test-1 fails (scored 9): the score is that of tasks test-0 and test-2 alone."""
    trainer = MAGRPOTrainer(MAGRPOConfig(**fast), env=SandboxErrorEnv(set()))
    team, sampling = trainer.team, trainer.sampling
    clean_env, failing_env = (
        SandboxErrorEnv(set(), split="test"),
        _FailingTaskEnv("test-1", split="test"),
    )
    resets = evaluation_resets(clean_env, 3)
    scored = evaluate(team, failing_env, resets, sampling)
    alone = evaluate(team, clean_env, resets[::2], sampling)
    assert scored["eval/sandbox_error_tasks"] == 1 and alone["eval/sandbox_error_tasks"] == 0
    assert scored["eval/team_reward_mean"] == alone["eval/team_reward_mean"]
    assert scored["eval/team_reward_last_turn"] == alone["eval/team_reward_last_turn"]
    with pytest.warns(UserWarning, match=r"every evaluation episode \(1\) had a sandbox error"):
        nothing = evaluate(team, failing_env, resets[1:2], sampling)
    assert math.isnan(nothing["eval/team_reward_mean"])
