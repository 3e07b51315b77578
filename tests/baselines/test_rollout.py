"""Rollout trees on the toy env with scripted answers: joint actions, returns, branching."""

from __future__ import annotations

import pytest
from fake_team import ScriptedTeam
from toy_env import DigitsEnv

from llm_marl.baselines.returns import ReturnSettings, backup_returns
from llm_marl.baselines.rollout import TreeSettings, joint_picks, observation_text, rollout_tree
from llm_marl.models import SamplingConfig

RETURN_FIELDS = ("reward", "gamma", "horizon")

# Sample g of every agent has g digits in its first 8 characters: score g / 8.
AGENTS = ["left_0", "right_1"]


def _by_index(agent: str, prompt: str, g: int) -> str:
    return "1" * g + "x" * (8 - g)


def _grow(env, answer, samples, settings):  # type: ignore[no-untyped-def]
    """The scored tree with returns backed up, and the scripted team."""
    team = ScriptedTeam(AGENTS, answer)
    tree = {k: v for k, v in settings.items() if k not in RETURN_FIELDS}
    returns = {k: v for k, v in settings.items() if k in RETURN_FIELDS}
    root = rollout_tree(
        env, {"seed": 0}, team, SamplingConfig(num_samples=samples), TreeSettings(**tree)
    )
    backup_returns(root, ReturnSettings(**returns))
    return root, team


def _tree(answer=_by_index, *, num_turns=1, samples=3, **settings):  # type: ignore[no-untyped-def]
    return _grow(DigitsEnv(num_turns=num_turns), answer, samples, settings)


def test_joint_picks_aligned_and_cross() -> None:
    assert joint_picks("aligned", 3, 2) == [(0, 0), (1, 1), (2, 2)]
    assert len(joint_picks("cross", 3, 2)) == 9
    assert joint_picks("cross", 2, 2) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    with pytest.raises(ValueError, match="joint_mode must be"):
        joint_picks("all", 2, 2)


def test_aligned_single_turn_scores_g_joint_actions() -> None:
    root, team = _tree()
    assert [j.picks for j in root.joints] == [(0, 0), (1, 1), (2, 2)]
    assert [j.team_reward for j in root.joints] == [0.0, 1 / 8, 2 / 8]
    assert root.sample_returns["left_0"] == [0.0, 1 / 8, 2 / 8]
    assert all(j.child is None and j.done for j in root.joints)
    assert len(team.calls) == 1 and len(team.calls[0]) == 2  # one batched call, both agents


def test_cross_mode_returns_are_means_over_the_partners() -> None:
    root, _ = _tree(joint_mode="cross")
    assert len(root.joints) == 9
    # left's sample i joins right's samples 0, 1, 2: team = (i + j) / 16, mean over j
    expected = [sum((i + j) / 16 for j in range(3)) / 3 for i in range(3)]
    assert root.sample_returns["left_0"] == pytest.approx(expected)
    assert root.sample_returns["right_1"] == pytest.approx(expected)


def test_two_turn_tree_backs_up_discounted_child_means() -> None:
    root, team = _tree(num_turns=2, samples=2, gamma=0.5)
    assert len(team.calls) == 2  # turn 0, then both children in one call
    assert len(team.calls[1]) == 4
    for joint in root.joints:
        assert joint.child is not None and not joint.done
        child_rewards = [c.team_reward for c in joint.child.joints]
        assert child_rewards == [0.0, 1 / 8]
        assert joint.returns["left_0"] == pytest.approx(joint.team_reward + 0.5 * (1 / 16))
        assert "you said" in joint.child.prompts["left_0"]  # the transition's next prompt
    assert [n.turn for n in root.walk()] == [0, 1, 1]


def test_early_stop_threshold_leaves_good_nodes_unexpanded() -> None:
    root, team = _tree(num_turns=2, samples=3, early_stop_threshold=0.1)  # mean 1/8 >= 0.1
    assert all(j.child is None for j in root.joints) and len(team.calls) == 1
    assert root.sample_returns["left_0"] == [0.0, 1 / 8, 2 / 8]
    root, _ = _tree(num_turns=2, samples=3, early_stop_threshold=0.5)
    assert all(j.child is not None for j in root.joints)


def test_expand_top_k_keeps_the_best_branches() -> None:
    root, team = _tree(num_turns=3, samples=3, expand_top_k=1)
    expanded = [j for j in root.joints if j.child is not None]
    assert [j.picks for j in expanded] == [(2, 2)]  # the best joint action only
    assert [n.turn for n in root.walk()] == [0, 1, 2]  # a single best path
    assert len(team.calls) == 3


def test_observation_text_accepts_dicts_and_strings() -> None:
    assert observation_text({"text": "hi"}) == "hi" and observation_text("hi") == "hi"
    with pytest.raises(TypeError, match="text observations"):
        observation_text({"image": 1})


def test_pruned_siblings_keep_the_horizon_of_the_expanded_ones() -> None:
    """Every branch has the same future here, so pruning must not change any advantage."""
    full, _ = _tree(num_turns=2, samples=3, gamma=0.9)
    pruned, _ = _tree(num_turns=2, samples=3, gamma=0.9, expand_top_k=1)
    assert pruned.sample_returns["left_0"] == pytest.approx(full.sample_returns["left_0"])


def test_early_stopped_branches_hold_their_reward_for_the_remaining_turns() -> None:
    root, _ = _tree(num_turns=3, samples=3, gamma=0.5, early_stop_threshold=0.1, horizon=3)
    assert all(j.child is None for j in root.joints)
    weight = 1 + 0.5 + 0.25  # this turn and two more
    assert root.sample_returns["left_0"] == pytest.approx([0.0, weight / 8, 2 * weight / 8])


def test_own_rewards_feed_the_returns_only_when_asked() -> None:
    def lopsided(agent: str, prompt: str, g: int) -> str:
        return "1" * 8 if agent == "left_0" else "x" * 8

    shared, _ = _tree(lopsided)
    assert shared.sample_returns["right_1"] == [0.5, 0.5, 0.5]  # the team reward
    own, _ = _tree(lopsided, reward="own")
    assert own.sample_returns["right_1"] == [0.5, 0.5, 0.5]  # DigitsEnv is shared by default
    root, _ = _grow(DigitsEnv(reward_mode="individual"), lopsided, 2, {"reward": "own"})
    assert root.sample_returns == {"left_0": [1.0, 1.0], "right_1": [0.0, 0.0]}
    root, _ = _grow(DigitsEnv(reward_mode="individual"), lopsided, 2, {"reward": "team"})
    assert root.sample_returns == {"left_0": [0.5, 0.5], "right_1": [0.5, 0.5]}
    assert root.joints[0].rewards == {"left_0": 1.0, "right_1": 0.0}  # the tree keeps both


class SolvedEnv(DigitsEnv):
    """Ends the episode as soon as the team reward reaches 0.25 (a solved task)."""

    def step(self, actions):  # type: ignore[no-untyped-def]
        observations, rewards, terminations, truncations, infos = super().step(actions)
        if infos[self.possible_agents[0]]["team_reward"] >= 0.25:
            terminations = dict.fromkeys(terminations, True)
            self.agents = []
        return observations, rewards, terminations, truncations, infos


def test_an_episode_ended_early_is_credited_over_the_same_horizon() -> None:
    settings = {"gamma": 0.9, "horizon": 3, "early_stop_threshold": 0.1}
    root, _ = _grow(SolvedEnv(num_turns=3), _by_index, 3, settings)
    weight = 1 + 0.9 + 0.81
    # sample 2 solved the task (0.25, episode over); sample 1 did not (0.125): 2 stays ahead
    assert root.joints[2].done and not root.joints[1].done
    assert root.sample_returns["left_0"] == pytest.approx([0.0, 0.125 * weight, 0.25 * weight])
