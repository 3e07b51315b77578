"""TorchRL's own PettingZooWrapper, spec checker and rollout on every llm-marl env."""

from __future__ import annotations

import pytest

import llm_marl

pytest.importorskip("torchrl")

from torchrl.envs.utils import check_env_specs

from llm_marl.integrations.torchrl import (
    NumericInfos,
    flat_numeric_infos,
    torchrl_env,
)


def test_flat_numeric_infos_flattens_dicts_and_drops_text() -> None:
    """Nested dicts become dotted keys, booleans floats; strings are dropped."""
    info = {"task_id": "t1", "turn": 1, "ok": True, "terms": {"a": 0.5, "why": "x"}}
    assert flat_numeric_infos(info) == {"turn": 1.0, "ok": 1.0, "terms.a": 0.5}


def test_numeric_infos_have_the_same_keys_at_reset_and_step() -> None:
    """Keys seen only after a step are filled at reset, so TorchRL's specs hold throughout."""
    env = NumericInfos(llm_marl.make("tldr_v0"))
    _, reset_infos = env.reset(seed=0)
    *_, step_infos = env.step({a: "some words" for a in env.agents})
    for agent in env.possible_agents:
        assert list(reset_infos[agent]) == list(step_infos[agent]) == list(env.info_keys)
        assert all(isinstance(v, float) for v in step_infos[agent].values())
    assert "reward_terms.total" in env.info_keys
    assert reset_infos[env.possible_agents[0]]["reward_terms.total"] == 0.0
    assert env.raw_infos[env.possible_agents[0]]["task_id"]  # the text stays reachable


@pytest.mark.parametrize("env_id", llm_marl.list_envs())
def test_check_env_specs_passes(env_id: str) -> None:
    """TorchRL's ``check_env_specs`` (a real rollout checked against the specs) passes."""
    check_env_specs(torchrl_env(env_id, num_turns=2), seed=0)


def test_rollout_with_a_text_policy_scores_like_the_env() -> None:
    """Actions written by a TorchRL policy reach the env as the exact strings."""
    from tensordict import NonTensorStack

    env = torchrl_env("tldr_v0", reward_mode="individual")
    answers = {
        agent: f"answer of {agent} with a few words, " * (k + 1)
        for k, agent in enumerate(env.possible_agents)
    }

    def policy(td):  # type: ignore[no-untyped-def]
        for group, agents in env.group_map.items():
            td.set((group, "action"), NonTensorStack(*(answers[a] for a in agents)))
        return td

    rollout = env.rollout(5, policy=policy)
    assert rollout.batch_size[0] == 1  # one turn: the fixed horizon ends the episode
    assert bool(rollout["next", "done"].all())
    task_id = env.raw_infos[env.possible_agents[0]]["task_id"]

    plain = llm_marl.make("tldr_v0", reward_mode="individual")
    plain.reset(options={"task_id": task_id})
    _, rewards, *_ = plain.step(answers)
    for group, agents in env.group_map.items():
        got = rollout["next", group, "reward"].flatten().tolist()
        assert got == pytest.approx([rewards[a] for a in agents])
    assert len(set(rewards.values())) == 2  # distinct answers, distinct individual rewards


def test_a_sandbox_failure_stays_in_the_numeric_infos(broken_sandbox: None) -> None:
    """The reference solution under a broken sandbox: ``sandbox_error`` reads 1.0 (0.0 at
    reset), so a TorchRL user can drop the step instead of learning its reward."""
    env = NumericInfos(llm_marl.make("humaneval_v0", max_tasks=1))
    _, reset_infos = env.reset(seed=0)
    *_, step_infos = env.step(env.unwrapped.reference_actions())
    for agent in env.possible_agents:
        assert reset_infos[agent]["sandbox_error"] == 0.0
        assert step_infos[agent]["sandbox_error"] == 1.0
    assert flat_numeric_infos({"sandbox_status": "ok"}) == {"sandbox_error": 0.0}
