"""SkyRL-gym's own registry, make and init/step loop on every llm-marl env."""

from __future__ import annotations

import pytest

import llm_marl

skyrl_gym = pytest.importorskip("skyrl_gym")

from llm_marl.integrations.skyrl_gym import SkyRLTextEnv, register_envs  # noqa: E402

#: The envs llm-marl registers itself (collected before any test registers its own).
BUILTIN_ENVS = llm_marl.list_envs()


def test_every_env_is_registered_once() -> None:
    """``skyrl_gym.make`` knows every env id; re-registering adds nothing."""
    register_envs()
    for env_id in BUILTIN_ENVS:  # envs other tests register need not have a single-agent view
        assert isinstance(skyrl_gym.make(f"llm_marl:{env_id}"), SkyRLTextEnv)
    assert register_envs() == []


@pytest.mark.parametrize("env_id", BUILTIN_ENVS)
def test_init_step_loop_matches_the_single_agent_view(env_id: str) -> None:
    """The task of ``extras``, the env's prompts as user messages and its rewards."""
    register_envs()
    plain = llm_marl.make(env_id, single_agent=True, num_turns=2)
    task_id = plain.tasks[2].task_id
    env = skyrl_gym.make(
        f"llm_marl:{env_id}", env_config={"num_turns": 2}, extras={"task_id": task_id}
    )
    conversation, info = env.init([{"role": "user", "content": "ignored"}])
    observations, _ = plain.reset(options={"task_id": task_id})
    assert info["task_id"] == task_id
    solo = plain.possible_agents[0]
    done, turn = False, 0
    while not done:
        assert conversation == [{"role": "user", "content": observations[solo]["text"]}]
        answer = f"answer of turn {turn}"
        out = env.step(answer)
        observations, rewards, *_ = plain.step({solo: answer})
        assert out["reward"] == pytest.approx(rewards[solo])
        assert out["metadata"]["turn"] == turn
        conversation, done, turn = out["observations"], out["done"], turn + 1
    assert turn == env.max_turns == 2
    assert conversation == []


def test_a_team_view_is_refused() -> None:
    """SkyRL-gym has one conversation per episode: ``single_agent=False`` is refused."""
    register_envs()
    with pytest.raises(ValueError, match="single-agent view"):
        skyrl_gym.make("llm_marl:tldr_v0", env_config={"single_agent": False})
