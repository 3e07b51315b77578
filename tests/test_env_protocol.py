"""llm_marl.env_protocol: the typed protocol of what trainers need, and its readers."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

import llm_marl
from llm_marl.env_protocol import (
    EnvOptions,
    HasNumTurns,
    TaskLister,
    TextParallelEnv,
    env_num_turns,
    env_task_ids,
    observation_text,
    team_outcome,
)
from llm_marl.envs.tldr_v0 import TLDR3Env


@pytest.mark.parametrize("env_id", llm_marl.list_envs())
def test_every_registered_env_satisfies_the_protocol(env_id: str) -> None:
    """Built-in envs are text parallel envs that list tasks and state their turns."""
    options: EnvOptions = {"num_turns": 2, "split": "test", "reward_mode": "individual"}
    env = llm_marl.make(env_id, **options)
    assert isinstance(env, TextParallelEnv)
    assert isinstance(env, TaskLister) and isinstance(env, HasNumTurns)
    assert env_num_turns(env, 1) == 2
    ids = env_task_ids(env)
    assert ids and ids == [task.task_id for task in env.tasks]
    observations, _ = env.reset(seed=0, options={"task_id": ids[-1]})
    assert all(isinstance(observation_text(o), str) for o in observations.values())
    solo = llm_marl.make(env_id, single_agent=True)
    assert len(solo.possible_agents) == 1


def test_a_three_writer_env_satisfies_the_protocol() -> None:
    """The reusable 3-role env is a TextParallelEnv with three agents."""
    env = TLDR3Env()
    assert isinstance(env, TextParallelEnv)
    assert env.possible_agents == ["concise_0", "detailed_1", "extended_2"]


class _Bare:
    """An env-like object without tasks or num_turns."""

    def __init__(self) -> None:
        self.possible_agents: list[str] = []
        self.agents: list[str] = []


@dataclass
class _Task:
    task_id: object


class _Listing:
    def __init__(self, ids: list[object]) -> None:
        self.tasks = [_Task(i) for i in ids]


def test_env_task_ids_reads_str_ids_or_gives_none() -> None:
    """str ids are listed in order; no tasks, none, or a non-str id give None."""
    assert env_task_ids(_Listing(["b", "a"])) == ["b", "a"]
    assert env_task_ids(_Bare()) is None
    assert env_task_ids(_Listing([])) is None
    assert env_task_ids(_Listing(["a", 3])) is None
    assert not isinstance(_Bare(), TaskLister)
    assert not isinstance(_Bare(), TextParallelEnv)  # no reset / step


def test_env_num_turns_falls_back_and_validates() -> None:
    """The env's num_turns wins; without one the default; bad values are named."""
    assert env_num_turns(_Bare(), 3) == 3
    holder = _Bare()
    holder.num_turns = np.int64(4)  # type: ignore[attr-defined]
    assert env_num_turns(holder, 1) == 4 and type(env_num_turns(holder, 1)) is int
    holder.num_turns = 0  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"env.num_turns must be an integer >= 1, got 0"):
        env_num_turns(holder, 1)


def test_observation_text_takes_str_or_text_dict() -> None:
    """A str, or {"text": str}; anything else is a TypeError naming its type."""
    assert observation_text("héllo") == "héllo"
    assert observation_text({"text": "prompt"}) == "prompt"
    with pytest.raises(TypeError, match="got dict"):
        observation_text({"image": "x"})
    with pytest.raises(TypeError, match="got int"):
        observation_text(3)


def test_team_outcome_prefers_infos_and_falls_back_to_the_mean() -> None:
    """team_reward and reward_terms of the first agent; else the mean reward and no terms."""
    rewards = {"a_0": 1.0, "b_1": 2.0}
    infos = {"a_0": {"team_reward": 5, "reward_terms": {"x": 1}}, "b_1": {"team_reward": 9.0}}
    assert team_outcome(infos, rewards) == (5.0, {"x": 1.0})
    assert team_outcome({}, rewards) == (1.5, {})
    assert team_outcome({"a_0": {}}, rewards) == (1.5, {})
    with pytest.raises(ValueError, match="at least one agent"):
        team_outcome({}, {})


def test_team_outcome_matches_a_real_env_step() -> None:
    """On an llm-marl env, team_outcome gives the env's team reward and its terms."""
    env = llm_marl.make("tldr_v0", reward_mode="individual")
    env.reset(seed=0)
    _, rewards, _, _, infos = env.step(env.reference_actions())
    team, terms = team_outcome(infos, rewards)
    assert team == infos["concise_0"]["team_reward"] == terms["total"]
    assert team == pytest.approx(sum(rewards.values()))


def test_the_protocol_module_does_not_import_torch() -> None:
    """Trainers and envs share it; it stays importable without torch."""
    code = "import sys, llm_marl.env_protocol; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
