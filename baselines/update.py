"""From scored trees to gradients: groups, advantages, the loss, one optimiser step per agent.

Every (node, agent) pair of a tree is one group: the agent's G samples at that node with their
returns. Each agent's loss is the mean of its groups' losses; agents own disjoint parameters,
so one backward pass over the sum gives every agent its own gradient. Tasks of one update are
backpropagated one at a time (gradient accumulation), scaled by ``1 / tasks``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from llm_marl.baselines.advantages import group_advantages
from llm_marl.baselines.config import TrainConfig
from llm_marl.baselines.losses import group_loss
from llm_marl.baselines.rollout import Node
from llm_marl.models import Completion, Team

__all__ = ["Group", "LossStats", "backpropagate", "optimizer_step", "tree_groups"]


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


@dataclass
class LossStats:
    """What one backward pass measured, summed over its groups."""

    loss: float = 0.0
    kl_tokens: float = 0.0
    clipped_tokens: float = 0.0
    tokens: int = 0

    def add(self, other: LossStats) -> None:
        """Accumulate ``other`` into this one."""
        self.loss += other.loss
        self.kl_tokens += other.kl_tokens
        self.clipped_tokens += other.clipped_tokens
        self.tokens += other.tokens


def tree_groups(root: Node, config: TrainConfig) -> list[Group]:
    """Every (node, agent) group of a scored tree, with advantages under ``config``."""
    groups = []
    for node in root.walk():
        for agent in node.agents:
            returns = node.sample_returns[agent]
            advantages = group_advantages(
                torch.tensor(returns, dtype=torch.float32),
                config.advantage,
                scale_by_std=config.scale_by_std,
            )
            groups.append(Group(agent, node.turn, node.samples[agent], returns, advantages))
    return groups


def attach_reference(team: Team, groups: Sequence[Group], batch_size: int | None) -> None:
    """Reference-policy log-probs for every group (one batched pass), for the KL term."""
    flat = [c for g in groups for c in g.completions]
    reference = iter(team.reference_logprobs(flat, batch_size=batch_size))
    for group in groups:
        group.reference = [next(reference) for _ in group.completions]


def backpropagate(
    team: Team, groups: Sequence[Group], config: TrainConfig, scale: float
) -> LossStats:
    """Backward ``scale`` times the sum over agents of each agent's mean group loss."""
    flat = [c for g in groups for c in g.completions]
    current = iter(team.logprobs(flat, batch_size=config.logprob_batch_size))
    per_agent: dict[str, list[torch.Tensor]] = defaultdict(list)
    stats = LossStats()
    for group in groups:
        logprobs = [next(current) for _ in group.completions]
        result = group_loss(
            logprobs,
            group.advantages.to(logprobs[0].device),
            aggregation=config.loss_aggregation,
            old_logprobs=[c.logprobs for c in group.completions],
            clip_epsilon=config.clip_epsilon,
            reference_logprobs=group.reference,
            kl_beta=config.kl_beta,
        )
        per_agent[group.agent].append(result.loss)
        stats.kl_tokens += result.kl * result.tokens
        stats.clipped_tokens += result.clip_fraction * result.tokens
        stats.tokens += result.tokens
    total = sum(torch.stack(losses).mean() for losses in per_agent.values())
    assert isinstance(total, torch.Tensor)
    (total * scale).backward()
    stats.loss = float(total.detach()) * scale
    return stats


def optimizer_step(
    team: Team, optimizers: Mapping[str, torch.optim.Optimizer], max_grad_norm: float
) -> dict[str, float]:
    """Clip and apply each agent's gradient with its own optimiser; the gradient norms."""
    norms = {}
    for agent, optimizer in optimizers.items():
        params = team.trainable_parameters(agent)
        limit = max_grad_norm if max_grad_norm > 0 else float("inf")
        norms[agent] = float(torch.nn.utils.clip_grad_norm_(params, limit))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return norms
