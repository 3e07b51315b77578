"""tldr_v0 and arxiv_v0: module shape, prompts, reward wiring."""

from __future__ import annotations

import importlib
import pickle

import pytest

import llm_marl
from llm_marl.rewards.writing import ARXIV_V0, TLDR_V0, score_writing

SPECS = {"tldr_v0": TLDR_V0, "arxiv_v0": ARXIV_V0}
SHORT = "The author asks whether to move to a new city for a better paid job offer."
LONG = (
    "The author, who has lived in the same town for ten years, received an offer that pays far "
    "more; however, moving means leaving friends and an ageing parent behind. Therefore they "
    "weigh career growth against family duty and ask readers for advice."
)


@pytest.mark.parametrize("env_id", SPECS)
def test_aec_episode_plays_to_the_end(env_id: str) -> None:
    """The AEC env() steps agent by agent and ends with the team reward."""
    env = importlib.import_module(f"llm_marl.envs.{env_id}").env()
    env.reset(seed=0)
    for agent in env.agent_iter():
        _, _, terminated, truncated, _ = env.last()
        env.step(None if terminated or truncated else SHORT if agent.endswith("_0") else LONG)
    assert env.agents == []


@pytest.mark.parametrize("env_id", SPECS)
def test_team_reward_is_the_spec_on_agent_order(env_id: str) -> None:
    """Agent 0's answer is a1 and agent 1's is a2 of the reward; swapping changes the score."""
    for first, second in ((SHORT, LONG), (LONG, SHORT)):
        env = llm_marl.make(env_id)
        env.reset(seed=2)
        agents = env.possible_agents
        _, rewards, *_ = env.step({agents[0]: first, agents[1]: second})
        expected = score_writing(SPECS[env_id], first, second).total
        assert rewards[agents[0]] == pytest.approx(expected)
    if env_id == "tldr_v0":
        assert score_writing(TLDR_V0, SHORT, LONG).total > 2.0
        assert score_writing(TLDR_V0, LONG, SHORT).total == 0.5


@pytest.mark.parametrize("env_id", SPECS)
def test_prompts_show_the_document_and_each_role(env_id: str) -> None:
    """Each agent's prompt holds the task's document and its own instruction only."""
    env = llm_marl.make(env_id)
    observations, _ = env.reset(seed=0)
    for index, agent in enumerate(env.possible_agents):
        text = observations[agent]["text"]
        assert env.task.document in text
        assert env.instructions[index] in text
        assert env.instructions[1 - index] not in text


def test_tldr_reference_summaries_are_kept() -> None:
    """TLDR tasks keep the data set's reference summary (for evaluation)."""
    assert all(task.reference for task in llm_marl.make("tldr_v0").tasks)


@pytest.mark.parametrize("env_id", SPECS)
def test_factories_and_envs_pickle(env_id: str) -> None:
    """Vectorised runners pickle factories and envs; a pickled env resumes identically."""
    module = importlib.import_module(f"llm_marl.envs.{env_id}")
    for factory in (module.env, module.raw_env, module.parallel_env):
        assert pickle.loads(pickle.dumps(factory)) is not None
    env = llm_marl.make(env_id, num_turns=2)
    env.reset(seed=1)
    clone = pickle.loads(pickle.dumps(env))
    actions = dict(zip(env.possible_agents, (SHORT, LONG), strict=True))
    assert clone.step(actions) == env.step(actions)
