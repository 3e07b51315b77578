"""The Gymnasium single-agent view passes Gymnasium's env checker and runs in vector envs."""

from __future__ import annotations

import warnings

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv

import llm_marl
from llm_marl.integrations.gymnasium import GymnasiumEnv, register_envs

ANSWER = "[PART 1]\nA short plain answer of some words.\n[PART 2]\nHowever, a longer answer."


@pytest.mark.parametrize("env_id", llm_marl.list_envs())
def test_gymnasium_env_checker_passes_on_every_env(env_id: str) -> None:
    """gymnasium.utils.env_checker.check_env passes, render modes included, without warnings."""
    env = gymnasium.make(f"llm_marl/{env_id}", num_turns=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)


def test_plain_str_observations_and_termination_at_the_horizon() -> None:
    """Observations are the prompt str; the last turn terminates, nothing truncates."""
    env = GymnasiumEnv("tldr_v0", num_turns=2)
    prompt, info = env.reset(seed=3)
    assert isinstance(prompt, str) and env.observation_space.contains(prompt)
    assert info["turn"] == 0 and set(info) >= {"task_id", "team_reward", "reward_terms"}
    first = env.step(ANSWER)
    assert first[2:4] == (False, False) and isinstance(first[0], str)
    prompt, reward, terminated, truncated, last = env.step(ANSWER)
    assert (terminated, truncated) == (True, False) and reward == last["team_reward"]
    assert set(last) == set(info)


def test_same_seed_same_episode_and_tasks_by_option() -> None:
    """Seeded resets repeat; options={'task_id': ...} picks a task."""
    env = GymnasiumEnv("arxiv_v0")
    assert env.reset(seed=1) == env.reset(seed=1)
    task_id = env.env.tasks[2].task_id
    assert env.reset(options={"task_id": task_id})[1]["task_id"] == task_id


def test_registered_ids_and_user_envs() -> None:
    """Every llm-marl env is in Gymnasium's registry; register_envs adds later ones once."""
    register_envs()  # envs other tests registered after this module's import
    assert {f"llm_marl/{e}" for e in llm_marl.list_envs()} <= set(gymnasium.registry)
    assert register_envs() == []
    with pytest.raises(ValueError, match="single-agent env"):
        GymnasiumEnv(env=llm_marl.make("tldr_v0"))
    with pytest.raises(ValueError, match="not both"):
        GymnasiumEnv()


def test_render_modes(capsys) -> None:
    """'ansi' returns the episode as text; 'human' prints it and returns None."""
    env = gymnasium.make("llm_marl/tldr_v0", render_mode="ansi")
    env.reset(seed=0)
    env.step(ANSWER)
    assert "However, a longer answer." in env.render()
    human = gymnasium.make("llm_marl/tldr_v0", render_mode="human")
    human.reset(seed=0)
    capsys.readouterr()
    assert human.render() is None and "tldr_v0" in capsys.readouterr().out


def test_async_vector_env_steps_on_unicode_prompts() -> None:
    """AsyncVectorEnv(shared_memory=False) steps on prompts outside any fixed charset (arXiv
    abstracts hold characters the sample charset lacks)."""
    tasks = GymnasiumEnv("arxiv_v0").env.tasks
    charset = set(GymnasiumEnv("arxiv_v0").observation_space.character_set)
    assert any(not set(task.document) <= charset for task in tasks)
    envs = AsyncVectorEnv(
        [lambda: GymnasiumEnv("arxiv_v0", num_turns=2) for _ in range(2)], shared_memory=False
    )
    try:
        observations, _ = envs.reset(seed=[0, 1])
        expected = [GymnasiumEnv("arxiv_v0", num_turns=2).reset(seed=s)[0] for s in (0, 1)]
        assert observations == tuple(expected)
        observations, rewards, terminated, truncated, _ = envs.step((ANSWER, ANSWER))
        assert isinstance(observations[0], str) and rewards.shape == (2,)
        assert not terminated.any() and not truncated.any()
        *_, terminated, truncated, _ = envs.step((ANSWER, ANSWER))
        assert terminated.all() and not truncated.any()
    finally:
        envs.close()


def test_async_vector_env_with_shared_memory_says_what_to_do() -> None:
    """Shared memory cannot hold text: the error names shared_memory=False, not a KeyError."""
    with pytest.raises(ValueError, match="shared_memory=False") as raised:
        AsyncVectorEnv([lambda: GymnasiumEnv("tldr_v0")], shared_memory=True)
    assert "tokenise the prompts" in str(raised.value.__cause__)


def test_sync_vector_env_samples_batched_actions() -> None:
    """gymnasium.make_vec builds a SyncVectorEnv whose batched action samples step it."""
    envs = gymnasium.make_vec("llm_marl/tldr_v0", num_envs=3, vectorization_mode="sync")
    assert isinstance(envs, SyncVectorEnv)
    observations, _ = envs.reset(seed=0)
    assert len(observations) == 3 and all(isinstance(o, str) for o in observations)
    envs.action_space.seed(0)
    *_, terminated, truncated, _ = envs.step(envs.action_space.sample())
    assert terminated.all() and not truncated.any()
    envs.close()
