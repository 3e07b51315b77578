"""From groups with advantages to gradients and optimiser steps.

Each agent's loss is the mean of its groups' losses; agents own disjoint parameters, so one
backward pass over the sum gives every agent its own gradient. Tasks of one update are
backpropagated one at a time (gradient accumulation), scaled by ``1 / tasks``. Each optimiser
(one per agent, plus any an algorithm adds, such as a critic's) clips and steps its own
parameters.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from llm_marl.baselines.credit import Group
from llm_marl.baselines.losses import group_loss
from llm_marl.models import Team

__all__ = [
    "Group",
    "LossSettings",
    "LossStats",
    "attach_old_logprobs",
    "attach_reference",
    "backpropagate",
    "optimizer_step",
]


@dataclass(frozen=True)
class LossSettings:
    """What the policy loss needs from a run's settings."""

    aggregation: str = "sequence_sum"
    """``sequence_sum`` or ``token_mean`` (:mod:`~llm_marl.baselines.losses`)."""
    clip_epsilon: float = 0.0
    """PPO ratio clipping range; 0: the plain policy gradient."""
    kl_beta: float = 0.0
    """Weight of the KL penalty to the reference policy; 0: off."""
    logprob_batch_size: int | None = None
    """Most responses in one forward pass; None: all of a task at once."""
    tis_cap: float | None = None
    """Cap of the truncated importance weight (trainer's old over sampler's); None: off."""
    old_from_loss: bool = False
    """Give groups without old log-probs the loss's own (detached) as the ratios' old policy:
    exact when every batch of samples serves one update (the weights have not moved since
    sampling), and one forward pass cheaper than :func:`attach_old_logprobs`."""


@dataclass
class LossStats:
    """What one backward pass measured, summed over its groups."""

    loss: float = 0.0
    kl_tokens: float = 0.0
    clipped_tokens: float = 0.0
    tokens: int = 0
    extra: dict[str, float] = field(default_factory=dict)
    """Sums of what an algorithm's own loss measured (a value loss, say), by metric name."""

    def add(self, other: LossStats) -> None:
        """Accumulate ``other`` into this one."""
        self.loss += other.loss
        self.kl_tokens += other.kl_tokens
        self.clipped_tokens += other.clipped_tokens
        self.tokens += other.tokens
        for name, value in other.extra.items():
            self.extra[name] = self.extra.get(name, 0.0) + value

    def scale(self, factor: float) -> None:
        """Scale the summed losses by ``factor`` (the mean over inner epochs)."""
        self.loss *= factor
        self.extra = {name: value * factor for name, value in self.extra.items()}


def attach_reference(team: Team, groups: Sequence[Group], batch_size: int | None) -> None:
    """Reference-policy log-probs for every group (one batched pass), for the KL term."""
    flat = [c for g in groups for c in g.completions]
    reference = iter(team.reference_logprobs(flat, batch_size=batch_size))
    for group in groups:
        group.reference = [next(reference) for _ in group.completions]


def attach_old_logprobs(team: Team, groups: Sequence[Group], batch_size: int | None) -> None:
    """The trainer's own log-probs of every group's samples before the update (one batched
    pass without grad), for ratios and TIS when another backend sampled them."""
    flat = [c for g in groups for c in g.completions]
    with torch.no_grad():
        old = iter(team.logprobs(flat, batch_size=batch_size))
    for group in groups:
        group.old = [next(old).detach() for _ in group.completions]


def backpropagate(
    team: Team, groups: Sequence[Group], settings: LossSettings, scale: float
) -> LossStats:
    """Backward ``scale`` times the sum over agents of each agent's mean group loss."""
    flat = [c for g in groups for c in g.completions]
    current = iter(team.logprobs(flat, batch_size=settings.logprob_batch_size))
    per_agent: dict[str, list[torch.Tensor]] = defaultdict(list)
    stats = LossStats()
    for group in groups:
        logprobs = [next(current) for _ in group.completions]
        sampled = [c.logprobs for c in group.completions]
        if group.old is None and settings.old_from_loss:
            group.old = [lp.detach() for lp in logprobs]
        result = group_loss(
            logprobs,
            group.advantages.to(logprobs[0].device),
            aggregation=settings.aggregation,
            old_logprobs=group.old if group.old is not None else sampled,
            clip_epsilon=settings.clip_epsilon,
            reference_logprobs=group.reference,
            kl_beta=settings.kl_beta,
            sampler_logprobs=sampled,
            tis_cap=settings.tis_cap,
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
    optimizers: Mapping[str, torch.optim.Optimizer], max_grad_norm: float
) -> dict[str, float]:
    """Clip and apply each optimiser's gradient to its own parameters; the gradient norms."""
    norms = {}
    limit = max_grad_norm if max_grad_norm > 0 else float("inf")
    for name, optimizer in optimizers.items():
        params = [p for group in optimizer.param_groups for p in group["params"]]
        norms[name] = float(torch.nn.utils.clip_grad_norm_(params, limit))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return norms
