"""Held-out evaluation: it never changes the training run, and it says when tasks are short."""

from __future__ import annotations

from typing import Any

import pytest

import llm_marl
from llm_marl.baselines import MAGRPOConfig, RunWarning
from llm_marl.baselines.evaluation import evaluation_resets
from llm_marl.baselines.magrpo import MAGRPOTrainer

TIMING = ("step_seconds", "tokens_per_second")


def test_evaluating_during_a_run_leaves_its_training_unchanged(fast: dict[str, Any]) -> None:
    """So a config may evaluate more often without changing the curve it reproduces."""
    runs = []
    for name, every in (("plain", 0), ("evaluated", 1)):
        config = MAGRPOConfig(**fast, num_steps=3, eval_every=every, eval_tasks=2, run_name=name)
        records = MAGRPOTrainer(config).train().metrics
        runs.append(
            [{k: v for k, v in r.items() if k not in TIMING and not k.startswith("eval/")}
             for r in records]
        )  # fmt: skip
    assert runs[0] == runs[1]


def test_fewer_test_tasks_than_asked_is_a_warning() -> None:
    env = llm_marl.make("tldr_v0", split="test", max_tasks=2)
    with pytest.warns(RunWarning, match="eval_tasks=8, but the test split has 2 tasks"):
        assert len(evaluation_resets(env, 8)) == 2
