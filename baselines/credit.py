"""The credit stage: from one task's scored tree to groups of samples with advantages.

A credit estimator sees a whole scored tree (every node, agent and turn) and returns a
:class:`Credit`: one :class:`Group` per (node, agent), the agent's G samples at that node with
their returns and ``(G,)`` advantages, plus anything the estimator's own loss needs later
(``extras``, such as a critic's value targets). Which reward feeds the returns (``"team"`` or
``"own"``) is the estimator's choice, so one env serves every algorithm.

- :class:`GroupBaseline`: the group-relative baselines of GRPO and MAGRPO (``mean``, ``rloo``,
  ``max``, ``raw``), optionally divided by the group's standard deviation;
- :class:`ReMaxBaseline`: the reward of the joint greedy answer at the same node (ReMax);
- the critics of :mod:`~llm_marl.baselines.actor_critic`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from llm_marl.baselines.advantages import group_advantages, scale_by_group_std
from llm_marl.baselines.returns import ReturnSettings, backup_returns, unexpanded_return
from llm_marl.baselines.rollout import Node
from llm_marl.models import Completion

__all__ = ["Credit", "CreditEstimator", "Group", "GroupBaseline", "ReMaxBaseline"]


@dataclass
class Group:
    """One agent's G samples at one node, with their returns and advantages."""

    agent: str
    turn: int
    completions: list[Completion]
    returns: list[float]
    advantages: torch.Tensor
    """``(G,)`` advantages, computed once per update."""
    reference: list[torch.Tensor] | None = None
    """The reference policy's log-probs, when a KL term is on."""
    old: list[torch.Tensor] | None = None
    """The trainer's own log-probs of the samples before this update (recomputed without
    grad), when another backend sampled them or truncated importance sampling is on; none:
    the recorded ones (``Completion.logprobs``) stand for them."""


@dataclass
class Credit:
    """What the credit stage made of one task's tree."""

    tree: Node
    groups: list[Group]
    extras: dict[str, Any] = field(default_factory=dict)
    """Whatever the estimator's own loss needs later (for example value targets)."""


class CreditEstimator(ABC):
    """Turns a task's scored tree into groups with advantages."""

    needs_greedy: ClassVar[bool] = False
    """The rollout must score one greedy joint answer per node (``Node.greedy``)."""

    def __init__(self, returns: ReturnSettings) -> None:
        self.returns = returns

    @property
    def reward(self) -> str:
        """Which reward feeds the returns: ``"team"`` or ``"own"``."""
        return self.returns.reward

    @abstractmethod
    def assign(self, tree: Node) -> Credit:
        """Returns and advantages for every (node, agent) group of ``tree``."""


class GroupBaseline(CreditEstimator):
    """Advantages against a baseline computed from the group's own returns."""

    def __init__(
        self, returns: ReturnSettings, baseline: str = "mean", *, scale_by_std: bool = False
    ) -> None:
        super().__init__(returns)
        group_advantages(torch.zeros(1), baseline)  # an unknown name fails here, not mid-run
        self.baseline, self.scale_by_std = baseline, scale_by_std

    def assign(self, tree: Node) -> Credit:
        """Discounted returns, then ``baseline`` within each (node, agent) group."""
        backup_returns(tree, self.returns)
        groups = []
        for node in tree.walk():
            for agent in node.agents:
                returns = node.sample_returns[agent]
                advantages = group_advantages(
                    torch.tensor(returns, dtype=torch.float32),
                    self.baseline,
                    scale_by_std=self.scale_by_std,
                )
                groups.append(Group(agent, node.turn, node.samples[agent], returns, advantages))
        return Credit(tree, groups)


class ReMaxBaseline(CreditEstimator):
    """ReMax: the baseline of a node is the return of its joint greedy answer.

    The greedy answer's immediate reward is measured (one extra greedy rollout per node); its
    continuation is taken as the mean child value of the node's expanded joint actions, or its
    reward held for the remaining turns when the node has none, as for any branch without a
    continuation (:mod:`~llm_marl.baselines.returns`).
    """

    needs_greedy: ClassVar[bool] = True

    def __init__(self, returns: ReturnSettings, *, scale_by_std: bool = False) -> None:
        super().__init__(returns)
        self.scale_by_std = scale_by_std

    def assign(self, tree: Node) -> Credit:
        """Discounted returns minus the greedy answer's return, per (node, agent) group."""
        backup_returns(tree, self.returns)
        groups = []
        for node in tree.walk():
            if node.greedy is None:
                raise ValueError("ReMax needs the rollout's greedy joint answer at every node")
            for agent in node.agents:
                returns = node.sample_returns[agent]
                values = torch.tensor(returns, dtype=torch.float32)  # (G,)
                advantages = values - self._greedy_return(node, agent)
                if self.scale_by_std:
                    advantages = scale_by_group_std(advantages, values)
                groups.append(Group(agent, node.turn, node.samples[agent], returns, advantages))
        return Credit(tree, groups)

    def _greedy_return(self, node: Node, agent: str) -> float:
        assert node.greedy is not None
        expanded = [j for j in node.joints if j.child is not None]
        return unexpanded_return(node, node.greedy, agent, self.returns, expanded)
