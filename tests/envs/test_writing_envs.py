"""tldr_v0 and arxiv_v0: module shape, prompts, reward wiring."""

from __future__ import annotations

import importlib
import json
import pickle
import re
from pathlib import Path

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


def test_three_writers_see_their_teammates_answers_and_score_by_pairs() -> None:
    """TLDR3Env: later prompts label every other writer's answer; reward = score_writing_team."""
    from llm_marl.envs.tldr_v0 import TLDR3Env
    from llm_marl.rewards.writing import score_writing_team

    env = TLDR3Env(num_turns=2, reward_mode="individual")
    env.reset(seed=0)
    answers = {"concise_0": SHORT, "detailed_1": LONG, "extended_2": LONG + " " + LONG}
    observations, rewards, *_, infos = env.step(answers)
    expected = score_writing_team(TLDR_V0, list(answers.values()))
    assert infos["concise_0"]["team_reward"] == expected.total
    assert list(rewards.values()) == list(expected.individual)
    text = observations["detailed_1"]["text"]
    assert "Your teammates' answers:\n[concise_0]\n" + SHORT in text
    assert "[extended_2]\n" + answers["extended_2"] in text
    assert "Your answer:\n" + LONG in text and "[detailed_1]" not in text
    solo = TLDR3Env(single_agent=True).reset(seed=0)[0]["writer_0"]["text"]
    assert "Write all 3 parts." in solo and "[PART 3]" in solo


def test_writing_roles_and_instructions_must_match() -> None:
    """A subclass whose per-role tuples do not match its roles fails at construction."""
    from llm_marl.envs.tldr_v0 import TLDREnv

    class OneRole(TLDREnv):
        roles = ("concise",)
        instructions = ("Summarise.",)
        reference_words = (15,)

    class Mismatch(TLDREnv):
        roles = ("concise", "detailed", "extended")

    with pytest.raises(
        ValueError, match=r"OneRole.roles must be a tuple of two or more .*\('concise',\)"
    ):
        OneRole()
    with pytest.raises(ValueError, match=r"Mismatch\.instructions must be a tuple with one entry"):
        Mismatch()


@pytest.mark.parametrize(("env_id", "what"), [("tldr_v0", "post"), ("arxiv_v0", "abstract")])
def test_a_refused_record_names_its_file(env_id: str, what: str, tmp_path: Path) -> None:
    """A local file whose record lacks the text column: the error names the file and record."""
    path = tmp_path / "wrongfields.jsonl"
    path.write_text(json.dumps({"foo": 1}) + "\n", encoding="utf-8")
    expected = f"record 0 of {path}: no {what}: expected a non-empty string in one of"
    with pytest.raises(ValueError, match=re.escape(expected)):
        llm_marl.make(env_id, data=str(path))
