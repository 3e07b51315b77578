"""TRL: train one model on an llm-marl env with TRL's ``GRPOTrainer``.

TRL's GRPO trains one model on single-turn prompts, so this adapter uses each env's
single-agent view (``single_agent=True``: one writer answers every part in one completion, as
``[PART 1]`` ... ``[PART n]`` sections, and gets the team reward). For a team of agents, use
llm-marl's own trainers (``llm-marl train --algo magrpo``).

>>> from trl import GRPOConfig, GRPOTrainer
>>> from llm_marl.integrations.trl import trl_dataset, trl_reward
>>> trainer = GRPOTrainer(
...     "HuggingFaceTB/SmolLM2-135M-Instruct",
...     reward_funcs=trl_reward("tldr_v0"),
...     train_dataset=trl_dataset("tldr_v0", "train"),
...     args=GRPOConfig(output_dir="runs/trl"),
... )
>>> trainer.train()

The data set has one row per task: ``prompt`` (a chat message list, or plain text with
``conversational=False``), ``task_id`` and ``split``. The reward follows TRL's reward-function
contract: prompts and completions in (plain or conversational), the extra columns as keyword
arguments, one float per completion out.

Sandbox failures: when the code sandbox itself fails to judge a completion (a coding env's
``infos[agent]["sandbox_status"] == "sandbox_error"``), its reward means nothing and must not be
learned from, so :func:`trl_reward` returns ``None`` for it. TRL's ``GRPOTrainer`` (>= 1.16:
``_calculate_rewards`` and ``_generate_and_score_completions`` in ``trl/trainer/grpo_trainer.py``)
turns a ``None`` into NaN; a completion whose every reward function gave ``None`` is left out of its
group's mean and standard deviation and of the logged reward, and its advantage is set to 0, so it
does not move the policy (TRL logs a warning naming the row). Needs ``pip install "llm-marl[trl]"``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import llm_marl
from llm_marl.env_base import CollaborativeTextEnv
from llm_marl.env_protocol import sandbox_failed

__all__ = ["RewardFunction", "completion_text", "trl_dataset", "trl_reward"]

RewardFunction = Callable[..., list[float | None]]


def _solo_env(env_id: str, split: str, env_kwargs: dict[str, Any]) -> CollaborativeTextEnv[Any]:
    if env_kwargs.get("num_turns", 1) != 1:
        raise ValueError(
            f"num_turns={env_kwargs['num_turns']}: TRL's GRPOTrainer scores one completion per "
            "prompt, so the TRL adapter plays single-turn episodes; drop num_turns"
        )
    if not env_kwargs.get("single_agent", True):
        raise ValueError(
            "single_agent=False: TRL trains one model, so the TRL adapter uses the single-agent "
            "view; for a team use llm-marl's trainers (llm-marl train --algo magrpo)"
        )
    kwargs = {**env_kwargs, "single_agent": True, "num_turns": 1, "split": split}
    env = llm_marl.make(env_id, **kwargs)
    if not isinstance(env, CollaborativeTextEnv):
        raise TypeError(f"{env_id!r} builds a {type(env).__name__}, not a CollaborativeTextEnv")
    return env


def trl_dataset(
    env_id: str, split: str = "train", *, conversational: bool = True, **env_kwargs: Any
) -> Any:
    """A ``datasets.Dataset`` of the env's single-agent prompts, one row per task of ``split``.

    Columns: ``prompt``, ``task_id``, ``split``. ``env_kwargs`` go to :func:`llm_marl.make`
    (for example ``max_tasks=8`` or ``data=...``); pass the same ones to :func:`trl_reward`.
    """
    from datasets import Dataset

    env = _solo_env(env_id, split, env_kwargs)
    agent = env.possible_agents[0]
    rows: dict[str, list[Any]] = {"prompt": [], "task_id": [], "split": []}
    for task in env.tasks:
        observations, _ = env.reset(options={"task_id": task.task_id})
        text = observations[agent]["text"]
        rows["prompt"].append([{"role": "user", "content": text}] if conversational else text)
        rows["task_id"].append(task.task_id)
        rows["split"].append(split)
    return Dataset.from_dict(rows)


def completion_text(completion: str | Sequence[dict[str, Any]]) -> str:
    """The text of a TRL completion: the string itself, or the content of its messages."""
    if isinstance(completion, str):
        return completion
    return "".join(str(message.get("content") or "") for message in completion)


def trl_reward(env_id: str, **env_kwargs: Any) -> RewardFunction:
    """A TRL reward function that scores each completion with ``env_id``'s team reward.

    It reads the ``task_id`` column (and ``split``, default ``"train"``) of
    :func:`trl_dataset`, plays the task's one-turn single-agent episode with the completion
    as the answer, and returns the episode's reward. ``env_kwargs`` go to
    :func:`llm_marl.make`; coding envs run the completion's code in llm-marl's sandbox.
    A completion the sandbox failed to judge (``sandbox_status == "sandbox_error"``) scores
    ``None``, which TRL leaves out of the group baseline and gives a zero advantage (see the
    module docstring): it is dropped, not learned from as a low reward.
    """
    envs: dict[str, CollaborativeTextEnv[Any]] = {}

    def reward(
        prompts: Sequence[Any],
        completions: Sequence[str | Sequence[dict[str, Any]]],
        task_id: Sequence[str] | None = None,
        split: Sequence[str] | None = None,
        **_: Any,
    ) -> list[float | None]:
        if task_id is None:
            raise ValueError(
                "the reward needs the dataset's task_id column: build the data set with "
                f"trl_dataset({env_id!r}, split) (or add a task_id column)"
            )
        splits = split if split is not None else ["train"] * len(completions)
        scores: list[float | None] = []
        for completion, tid, part in zip(completions, task_id, splits, strict=True):
            if part not in envs:
                envs[part] = _solo_env(env_id, part, env_kwargs)
            env = envs[part]
            env.reset(options={"task_id": tid})
            agent = env.possible_agents[0]
            _, rewards, _, _, infos = env.step({agent: completion_text(completion)})
            scores.append(None if sandbox_failed(infos) else float(rewards[agent]))
        return scores

    reward.__name__ = f"{env_id}_reward"
    reward.__qualname__ = reward.__name__
    return reward
