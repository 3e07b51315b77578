"""Discounted returns of a scored rollout tree, from the reward an algorithm learns from.

A joint action's return is its reward plus ``gamma`` times the mean return of its child's joint
actions; a sample's return is the mean over the joint actions it takes part in (in ``cross``
mode it joins G^(n-1) of them). Which reward feeds the returns is the credit estimator's
choice: ``"team"`` (every agent gets the team reward, as in MAGRPO) or ``"own"`` (each agent's
own env reward, as in independent learners).

Every joint action of a group is credited over the same horizon, so one group never compares
returns over different numbers of turns: a joint action left out by ``expand_top_k`` gets its
reward plus ``gamma`` times the mean child value of its expanded siblings; a joint action with
no continuation (its node stopped early, or the env ended the episode before ``horizon``) is
credited as if its reward repeated for the remaining turns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llm_marl.baselines.config import REWARD_SOURCES
from llm_marl.baselines.rollout import Joint, Node

__all__ = [
    "REWARD_SOURCES",
    "ReturnSettings",
    "backup_returns",
    "joint_reward",
    "per_sample_mean",
    "unexpanded_return",
]


@dataclass(frozen=True)
class ReturnSettings:
    """Which reward feeds the returns, and how later turns are discounted."""

    reward: str = "team"
    """``"team"``: the team reward for every agent; ``"own"``: each agent's own env reward."""
    gamma: float = 0.9
    """Discount of the next turn's return."""
    horizon: int | None = None
    """Turns per episode, to credit branches without a continuation; None: they count as
    ended."""

    def __post_init__(self) -> None:
        if self.reward not in REWARD_SOURCES:
            raise ValueError(f"reward must be one of {list(REWARD_SOURCES)}, got {self.reward!r}")


def joint_reward(joint: Joint, agent: str, reward: str) -> float:
    """The reward ``agent`` learns from for ``joint``: the team's or its own."""
    return joint.team_reward if reward == "team" else joint.rewards[agent]


def backup_returns(root: Node, settings: ReturnSettings) -> None:
    """Fill ``joint.returns`` and ``node.sample_returns`` over the whole tree under ``root``."""
    _backup(root, settings)


def _backup(node: Node, settings: ReturnSettings) -> None:
    gamma = settings.gamma
    expanded = [j for j in node.joints if j.child is not None]
    for joint in expanded:
        assert joint.child is not None
        _backup(joint.child, settings)
        joint.returns = {
            a: joint_reward(joint, a, settings.reward) + gamma * _child_value(joint.child, a)
            for a in node.agents
        }
    for joint in node.joints:
        if joint.child is not None:
            continue
        joint.returns = {
            a: unexpanded_return(node, joint, a, settings, expanded) for a in node.agents
        }
    node.sample_returns = {
        agent: per_sample_mean(node, index, [j.returns[agent] for j in node.joints])
        for index, agent in enumerate(node.agents)
    }


def unexpanded_return(
    node: Node, joint: Joint, agent: str, settings: ReturnSettings, expanded: Sequence[Joint]
) -> float:
    """The return of a joint action of ``node`` without a child, over the group's horizon:
    its reward held for the remaining turns when it ended or ``node`` has no ``expanded``
    joint actions, else its reward plus ``gamma`` times their mean continuation."""
    reward = joint_reward(joint, agent, settings.reward)
    if joint.done or not expanded:  # ended, or its node stopped early: reward held
        remaining = max(0, settings.horizon - 1 - node.turn) if settings.horizon else 0
        return reward * sum(settings.gamma**k for k in range(remaining + 1))
    return reward + settings.gamma * _sibling_value(expanded, agent)  # pruned by expand_top_k


def per_sample_mean(node: Node, agent_index: int, per_joint: Sequence[float]) -> list[float]:
    """Agent ``agent_index``'s mean of a per-joint-action value over each of its G samples."""
    num_samples = len(node.samples[node.agents[agent_index]])
    totals, counts = [0.0] * num_samples, [0] * num_samples
    for joint, value in zip(node.joints, per_joint, strict=True):
        totals[joint.picks[agent_index]] += value
        counts[joint.picks[agent_index]] += 1
    return [t / c for t, c in zip(totals, counts, strict=True)]


def _sibling_value(expanded: Sequence[Joint], agent: str) -> float:
    """Mean child value of ``agent`` over the expanded sibling joint actions."""
    return sum(_child_value(j.child, agent) for j in expanded if j.child) / len(expanded)


def _child_value(child: Node, agent: str) -> float:
    """Mean return of ``agent`` over a child's joint actions (0 once it has left)."""
    return sum(c.returns.get(agent, 0.0) for c in child.joints) / len(child.joints)
