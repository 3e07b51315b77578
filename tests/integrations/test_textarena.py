"""TextArena's own registry, make and game loop on every llm-marl env."""

from __future__ import annotations

import pytest

import llm_marl

ta = pytest.importorskip("textarena")

from llm_marl.integrations.textarena import TextArenaEnv, register_envs  # noqa: E402


def test_every_env_is_registered_once() -> None:
    """Each id gets a wrapped and a raw version; a second call adds nothing."""
    register_envs()
    for env_id in llm_marl.list_envs():
        assert f"llm_marl:{env_id}" in ta.envs.registration.ENV_REGISTRY
        assert f"llm_marl:{env_id}-raw" in ta.envs.registration.ENV_REGISTRY
    assert register_envs() == []


@pytest.mark.parametrize("env_id", llm_marl.list_envs())
def test_game_loop_plays_the_env(env_id: str) -> None:
    """TextArena's loop: players move in turn, rewards equal the env's for the same answers."""
    register_envs()
    game = ta.make(f"llm_marl:{env_id}", num_turns=2)
    plain = llm_marl.make(env_id, num_turns=2)
    players = len(plain.possible_agents)
    game.reset(num_players=players, seed=3)
    observations, _ = plain.reset(seed=3)
    totals = dict.fromkeys(plain.possible_agents, 0.0)
    done, moves, seen = False, 0, []
    while not done:
        player_id, observation = game.get_observation()
        assert isinstance(observation, str)
        seen.append((player_id, observation))
        done, _ = game.step(action=f"answer {moves} of player {player_id}")
        moves += 1
    for turn in range(2):
        actions = {
            a: f"answer {turn * players + i} of player {i}" for i, a in enumerate(plain.agents)
        }
        expected = [(i, observations[a]["text"]) for i, a in enumerate(plain.agents)]
        assert seen[turn * players : (turn + 1) * players] == expected
        observations, rewards, *_ = plain.step(actions)
        for agent, reward in rewards.items():
            totals[agent] += reward
    assert moves == 2 * players
    rewards, game_info = game.close()
    assert rewards == pytest.approx({i: totals[a] for i, a in enumerate(plain.possible_agents)})
    assert game_info[0]["role"] == plain.possible_agents[0]


def test_raw_version_speaks_textarena_messages_and_checks_players() -> None:
    """The raw env's observation is a message list; a wrong player count is refused."""
    register_envs()
    game = ta.make("llm_marl:tldr_v0-raw")
    assert isinstance(game, TextArenaEnv)
    with pytest.raises(ValueError, match="num_players=2"):
        game.reset(num_players=3)
    game.reset(num_players=2, seed=0)
    _, observation = game.get_observation()
    assert observation[0][0] == ta.GAME_ID and observation[0][2] == ta.ObservationType.PROMPT


def test_a_sandbox_failure_marks_the_game_info(broken_sandbox: None) -> None:
    """The reference solution under a broken sandbox: every player's game info says
    sandbox_error, so the summed reward can be dropped; the step's infos say why."""
    game = TextArenaEnv("humaneval_v0", max_tasks=1)
    game.reset(num_players=len(game.agents), seed=0)
    answers = game.env.reference_actions()
    done, info = False, {}
    while not done:
        player_id, _ = game.get_observation()
        done, info = game.step(action=answers[game.agents[player_id]])
    assert info["infos"][game.agents[0]]["sandbox_status"] == "sandbox_error"
    _, game_info = game.close()
    assert all(game_info[pid]["sandbox_error"] for pid in range(len(game.agents)))
