"""The interaction protocols on a scripted team: who sees what, what is scored, what it costs."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fake_team import ScriptedTeam

import llm_marl
from llm_marl.baselines.protocols import (
    Seat,
    discussion_prompt,
    play,
    rounds_per_episode,
    seats_for,
    sequential_prompt,
)
from llm_marl.models import SamplingConfig

SAMPLING = SamplingConfig(num_samples=3, temperature=0.8, max_new_tokens=8)
RESETS = [
    {"seed": 0, "options": {"task_id": "test-00000"}},
    {"seed": 1, "options": {"task_id": "test-00001"}},
]
SHORT = "The author lost the keys and found them in the car."
LONG = (
    "The author lost the keys on the way home, searched the flat for hours, asked the "
    "neighbours, and in the end found them in the car, however the spare key was gone too."
)


def _writers(prompts: list[tuple[str, str]]) -> ScriptedTeam:
    """Concise and detailed summaries; every request is recorded in ``prompts``."""

    def answer(agent: str, prompt: str, g: int) -> str:
        prompts.append((agent, prompt))
        return SHORT if agent.startswith("concise") else LONG

    return ScriptedTeam(["concise_0", "detailed_1"], answer)


def _env(**kwargs: Any) -> Any:
    return llm_marl.make("tldr_v0", split="test", **kwargs)


def test_parallel_shows_each_agent_its_own_prompt_and_scores_like_the_env() -> None:
    prompts: list[tuple[str, str]] = []
    team = _writers(prompts)
    env = _env()
    result = play(env, RESETS, seats_for(team, env.possible_agents), "parallel", SAMPLING, 3)
    assert [t.task_id for t in result.tasks] == ["test-00000", "test-00001"]
    assert all(len(t.episodes) == 3 for t in result.tasks)
    assert len(team.calls) == 1 and len(team.calls[0]) == 2 * 3 * 2  # one batched round
    own = copy.deepcopy(env)
    observations, _ = own.reset(**RESETS[0])
    assert prompts[0] == ("concise_0", observations["concise_0"]["text"])
    _, rewards, *_ = own.step({"concise_0": SHORT, "detailed_1": LONG})
    episode = result.tasks[0].episodes[0]
    assert episode.reward == rewards["concise_0"] > 0
    assert episode.answers == [{"concise_0": SHORT, "detailed_1": LONG}]
    assert episode.terms["structure"] > 0 and set(episode.terms) >= {"coherence", "consistency"}
    assert result.rounds == 1 and result.generation_seconds > 0
    assert env.agents == []  # the env itself is never stepped


def test_sequential_shows_the_later_agent_the_earlier_answers_only() -> None:
    prompts: list[tuple[str, str]] = []
    team = _writers(prompts)
    env = _env()
    result = play(env, RESETS[:1], seats_for(team, env.possible_agents), "sequential", SAMPLING, 2)
    assert [len(call) for call in team.calls] == [2, 2]  # one round per agent
    first = [p for a, p in prompts if a == "concise_0"]
    second = [p for a, p in prompts if a == "detailed_1"]
    assert all(SHORT not in p and "have answered" not in p for p in first)
    assert all(f"[concise_0]\n{SHORT}" in p for p in second)
    plain = copy.deepcopy(env).reset(**RESETS[0])[0]["detailed_1"]["text"]
    assert second[0] == sequential_prompt(plain, {"concise_0": SHORT})
    assert result.rounds == rounds_per_episode("sequential", 2, 1) == 2


def test_discussion_scores_the_final_answers_written_after_seeing_the_drafts() -> None:
    prompts: list[tuple[str, str]] = []

    def answer(agent: str, prompt: str, g: int) -> str:
        prompts.append((agent, prompt))
        final = "First round of the discussion" in prompt
        if agent.startswith("concise"):
            return SHORT if final else "draft one"
        return LONG if final else "draft two"

    team = ScriptedTeam(["concise_0", "detailed_1"], answer)
    env = _env()
    result = play(env, RESETS[:1], seats_for(team, env.possible_agents), "discussion", SAMPLING, 1)
    assert len(team.calls) == 2
    concise_final = team.calls[1][0][1]
    plain = copy.deepcopy(env).reset(**RESETS[0])[0]["concise_0"]["text"]
    drafts = {"concise_0": "draft one", "detailed_1": "draft two"}
    assert concise_final == discussion_prompt(plain, "concise_0", drafts)
    assert "Your draft:\ndraft one" in concise_final and "[detailed_1]\ndraft two" in concise_final
    episode = result.tasks[0].episodes[0]
    assert episode.answers == [{"concise_0": SHORT, "detailed_1": LONG}]  # drafts not scored
    assert episode.reward > 0


def test_discussion_refuses_a_multi_turn_env() -> None:
    team = _writers([])
    env = _env(num_turns=2)
    with pytest.raises(ValueError, match="one-turn envs"):
        play(env, RESETS, seats_for(team, env.possible_agents), "discussion", SAMPLING, 1)


def test_single_plays_the_env_single_agent_view_with_a_one_agent_model() -> None:
    def answer(agent: str, prompt: str, g: int) -> str:
        return f"[PART 1]\n{SHORT}\n[PART 2]\n{LONG}"

    team = ScriptedTeam(["agent_0"], answer)
    env = _env(single_agent=True)
    seats = seats_for(team, env.possible_agents)
    assert seats == {"writer_0": Seat(team, "agent_0")}
    result = play(env, RESETS, seats, "single", SAMPLING, 2)
    assert team.calls[0][0][0] == "agent_0"
    assert result.tasks[0].episodes[0].reward > 0


def test_multi_turn_parallel_plays_every_turn() -> None:
    team = _writers([])
    env = _env(num_turns=2)
    result = play(env, RESETS[:1], seats_for(team, env.possible_agents), "parallel", SAMPLING, 2)
    episode = result.tasks[0].episodes[0]
    assert len(episode.answers) == len(episode.rewards) == 2
    assert "Previous round" in team.calls[1][0][1]  # the env's transition built turn 2


def test_seats_mix_teams_and_leave_an_agent_out() -> None:
    left, right = _writers([]), _writers([])
    env = _env()
    seats = {"concise_0": Seat(left, "concise_0"), "detailed_1": Seat(right, "detailed_1")}
    play(env, RESETS, seats, "parallel", SAMPLING, 1)
    assert {a for a, _ in left.calls[0]} == {"concise_0"}
    assert {a for a, _ in right.calls[0]} == {"detailed_1"}
    alone = _writers([])
    result = play(
        env,
        RESETS,
        {"concise_0": Seat(alone, "concise_0"), "detailed_1": Seat(None)},
        "parallel",
        SAMPLING,
        1,
    )
    episode = result.tasks[0].episodes[0]
    assert episode.answers[0]["detailed_1"] == "" and episode.reward == 0.0
    assert {a for a, _ in alone.calls[0]} == {"concise_0"}


def test_seats_for_refuses_a_team_of_other_agents() -> None:
    team = ScriptedTeam(["a_0", "b_1"], lambda *_: "")
    with pytest.raises(ValueError, match=r"are not the env's \['concise_0', 'detailed_1'\]"):
        seats_for(team, ["concise_0", "detailed_1"])


def test_bad_arguments_are_named() -> None:
    team = _writers([])
    env = _env()
    seats = seats_for(team, env.possible_agents)
    with pytest.raises(ValueError, match="unknown protocol 'debate'"):
        play(env, RESETS, seats, "debate", SAMPLING, 1)
    with pytest.raises(ValueError, match=r"no seat for agents \['detailed_1'\]"):
        play(env, RESETS, {"concise_0": seats["concise_0"]}, "parallel", SAMPLING, 1)
    with pytest.raises(ValueError, match="samples must be >= 1"):
        play(env, RESETS, seats, "parallel", SAMPLING, 0)
