"""Credit estimators on scripted trees, against hand-computed advantages and value targets."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch
from fake_team import ScriptedTeam
from toy_env import DigitsEnv

from llm_marl.baselines.actor_critic import CriticBaseline, CriticInputs
from llm_marl.baselines.credit import GroupBaseline, ReMaxBaseline
from llm_marl.baselines.returns import ReturnSettings
from llm_marl.baselines.rollout import TreeSettings, rollout_tree
from llm_marl.models import SamplingConfig

AGENTS = ["left_0", "right_1"]


def _by_index(agent: str, prompt: str, g: int) -> str:
    return "1" * g + "x" * (8 - g)  # score g / 8


class GreedyTwoDigits(ScriptedTeam):
    """Samples as ``_by_index``; its greedy answer has two digits (score 2 / 8)."""

    def generate(self, requests, config):  # type: ignore[no-untyped-def]
        if config.temperature == 0:
            return [[_completion_like(self, a, p, "11xxxxxx")] for a, p in requests]
        return super().generate(requests, config)


def _completion_like(team: ScriptedTeam, agent: str, prompt: str, text: str):  # type: ignore[no-untyped-def]
    saved = team.answer
    team.answer = lambda *_: text
    try:
        return ScriptedTeam.generate(team, [(agent, prompt)], SamplingConfig(num_samples=1))[0][0]
    finally:
        team.answer = saved


class StubCritic:
    """Values each row by a rule on its text, as a trained critic would."""

    def __init__(self, rule) -> None:  # type: ignore[no-untyped-def]
        self.rule = rule
        self.rows: list[list[tuple[str, tuple[str, ...]]]] = []

    def values(self, rows: Sequence[tuple[str, tuple[str, ...]]]) -> torch.Tensor:
        self.rows.append(list(rows))
        return torch.tensor([self.rule(name, parts) for name, parts in rows])


def _tree(num_turns=1, samples=3, team=None, **tree):  # type: ignore[no-untyped-def]
    team = team or ScriptedTeam(AGENTS, _by_index)
    return rollout_tree(
        DigitsEnv(num_turns=num_turns),
        {"seed": 0},
        team,
        SamplingConfig(num_samples=samples),
        TreeSettings(**tree),
    )


def test_group_baseline_sees_every_node_and_agent() -> None:
    credit = GroupBaseline(ReturnSettings(gamma=0.5, horizon=2), "mean").assign(
        _tree(num_turns=2, samples=2)
    )
    assert [(g.agent, g.turn) for g in credit.groups] == [
        ("left_0", 0), ("right_1", 0), ("left_0", 1), ("right_1", 1), ("left_0", 1), ("right_1", 1)
    ]  # fmt: skip
    # root returns: r + 0.5 * mean child reward (1/16) -> [1/32, 1/8 + 1/32]; mean baseline
    assert credit.groups[0].advantages.tolist() == pytest.approx([-1 / 16, 1 / 16])


def test_remax_subtracts_the_greedy_joint_answers_reward() -> None:
    team = GreedyTwoDigits(AGENTS, _by_index)
    tree = _tree(team=team, greedy_joint=True)
    assert tree.greedy is not None and tree.greedy.team_reward == 0.25
    credit = ReMaxBaseline(ReturnSettings()).assign(tree)
    for group in credit.groups:
        assert group.advantages.tolist() == pytest.approx([0 - 0.25, 0.125 - 0.25, 0.0])
    with pytest.raises(ValueError, match="greedy joint answer"):
        ReMaxBaseline(ReturnSettings()).assign(_tree())


def test_independent_critic_single_turn() -> None:
    critic = StubCritic(lambda name, parts: {"left_0": 0.1, "right_1": 0.2}[name])
    estimator = CriticBaseline(
        ReturnSettings(), critic, CriticInputs(central=False, q=False), gae_lambda=0.95
    )
    credit = estimator.assign(_tree())
    left, right = credit.groups
    assert left.advantages.tolist() == pytest.approx([-0.1, 0.025, 0.15])
    assert right.advantages.tolist() == pytest.approx([-0.2, -0.075, 0.05])
    rows = credit.extras["value_rows"]
    assert [name for name, _ in rows] == ["left_0", "right_1"]  # one row per agent and node
    assert rows[0][1] == ("task 0: say numbers",) or "say numbers" in rows[0][1][0]
    # a V critic's target is the mean lambda-return of its node: the mean team reward
    assert credit.extras["value_targets"].tolist() == pytest.approx([0.125, 0.125])


@pytest.mark.parametrize(
    ("lam", "expected"), [(0.5, [-0.034375, 0.115625]), (1.0, [-0.06875, 0.05625])]
)
def test_central_critic_gae_over_two_turns(lam: float, expected: list[float]) -> None:
    """V(root) = 0.1; V(child after joint 0) = 0.2, after joint 1 = 0.3; gamma = 0.5.

    Leaves: A = r - V(child); child means -0.1375 and -0.2375. Root joint 0 (r = 0):
    delta = 0 + 0.5 * 0.2 - 0.1 = 0; joint 1 (r = 1/8): delta = 0.125 + 0.15 - 0.1 = 0.175;
    A = delta + 0.5 * lambda * child mean. lambda = 1 gives the Monte Carlo return - V(root).
    """

    def rule(name: str, parts: tuple[str, ...]) -> float:
        assert name == "central" and len(parts) == 2  # every agent's prompt
        if "you said: 1" in parts[0]:
            return 0.3
        return 0.2 if "you said" in parts[0] else 0.1

    estimator = CriticBaseline(
        ReturnSettings(gamma=0.5, horizon=2),
        StubCritic(rule),
        CriticInputs(central=True, q=False),
        gae_lambda=lam,
    )
    credit = estimator.assign(_tree(num_turns=2, samples=2))
    root_left, root_right = credit.groups[:2]
    assert root_left.advantages.tolist() == pytest.approx(expected)
    assert root_right.advantages.tolist() == pytest.approx(expected)  # shared advantages
    # the leaves' advantages: reward - V(child)
    assert credit.groups[2].advantages.tolist() == pytest.approx([-0.2, 0.125 - 0.2])
    rows = credit.extras["value_rows"]
    assert len(rows) == 3  # one central row per node


def test_q_critic_advantage_is_q_minus_its_mean_and_targets_are_returns() -> None:
    q_of = {"xxxxxxxx": 0.3, "1xxxxxxx": 0.1, "11xxxxxx": 0.2}

    def rule(name: str, parts: tuple[str, ...]) -> float:
        assert len(parts) == 4  # two prompts, two answers
        return q_of[parts[-1].split("\n")[-1]]

    estimator = CriticBaseline(
        ReturnSettings(), StubCritic(rule), CriticInputs(central=True, q=True), gae_lambda=0.9
    )
    credit = estimator.assign(_tree())
    assert credit.groups[0].advantages.tolist() == pytest.approx([0.1, -0.1, 0.0], abs=1e-6)
    assert credit.extras["value_targets"].tolist() == pytest.approx([0.0, 0.125, 0.25])
    with pytest.raises(ValueError, match="a Q critic is centralised"):
        CriticInputs(central=False, q=True)
