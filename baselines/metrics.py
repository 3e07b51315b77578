"""Per-step metrics from the scored trees and the update: plain floats, flat names.

- ``team_reward_mean`` / ``team_reward_std``: the first turn's joint actions (the tree roots,
  which pruning never selects); ``team_reward/turn{t}_mean`` for every turn;
- ``reward/{agent}/turn{t}_mean`` and ``_std``: each agent's own env reward;
- ``terms/{name}``: each reward term's mean; ``equal_reward_groups``: the fraction of groups
  whose returns are all equal (they teach nothing); ``advantage/...``;
- ``kl`` (with a KL term), ``clip_fraction`` (with clipping), ``completion_tokens/{agent}``,
  ``truncated/{agent}`` (the fraction that hit ``max_new_tokens``), ``tokens_per_second``;
- ``logprob_mismatch/mean`` and ``/max`` (when the groups hold the trainer's own old log-probs:
  another backend sampled, or TIS is on): the sampler's recorded log-probs against the
  trainer's recomputation on the same tokens.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence

import torch

from llm_marl.baselines.credit import Group
from llm_marl.baselines.rollout import Joint, Node
from llm_marl.baselines.update import LossStats
from llm_marl.models.backends import logprob_mismatch

__all__ = ["group_metrics", "reward_metrics"]


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.pstdev(values) if len(values) > 1 else 0.0


def _joints(trees: Iterable[Node]) -> list[tuple[Node, Joint]]:
    return [(node, joint) for tree in trees for node in tree.walk() for joint in node.joints]


def reward_metrics(trees: Sequence[Node]) -> dict[str, float]:
    """Team and per-agent rewards per turn, and every reward term, over all joint actions."""
    scored = _joints(trees)
    metrics: dict[str, float] = {}
    first_turn = [j.team_reward for tree in trees for j in tree.joints]
    metrics["team_reward_mean"], metrics["team_reward_std"] = _mean_std(first_turn)
    by_turn: dict[int, list[float]] = defaultdict(list)
    by_agent_turn: dict[tuple[str, int], list[float]] = defaultdict(list)
    terms: dict[str, list[float]] = defaultdict(list)
    for node, joint in scored:
        by_turn[node.turn].append(joint.team_reward)
        for agent, reward in joint.rewards.items():
            by_agent_turn[agent, node.turn].append(reward)
        for name, value in joint.terms.items():
            terms[name].append(float(value))
    for turn, values in sorted(by_turn.items()):
        metrics[f"team_reward/turn{turn}_mean"] = statistics.fmean(values)
    for (agent, turn), values in sorted(by_agent_turn.items()):
        mean, std = _mean_std(values)
        metrics[f"reward/{agent}/turn{turn}_mean"] = mean
        metrics[f"reward/{agent}/turn{turn}_std"] = std
    for name, values in sorted(terms.items()):
        metrics[f"terms/{name}"] = statistics.fmean(values)
    metrics["nodes"] = float(sum(1 for tree in trees for _ in tree.walk()))
    return metrics


def group_metrics(
    groups: Sequence[Group], loss: LossStats, *, kl: bool, clipping: bool
) -> dict[str, float]:
    """Advantage statistics, equal-reward groups, KL and clipping (when on), response lengths."""
    advantages = torch.cat([g.advantages for g in groups])  # (sum of G over groups,)
    equal = [max(g.returns) - min(g.returns) <= 1e-9 for g in groups]
    metrics = {
        "equal_reward_groups": sum(equal) / len(equal),
        "advantage/mean": float(advantages.mean()),
        "advantage/std": float(advantages.std(unbiased=False)),
        "advantage/min": float(advantages.min()),
        "advantage/max": float(advantages.max()),
        "advantage/abs_mean": float(advantages.abs().mean()),
        "loss": loss.loss,
        **loss.extra,
    }
    if kl:
        metrics["kl"] = loss.kl_tokens / max(loss.tokens, 1)
    if clipping:
        metrics["clip_fraction"] = loss.clipped_tokens / max(loss.tokens, 1)
    recomputed = [g for g in groups if g.old is not None]
    if recomputed:
        sampled = [c.logprobs for g in recomputed for c in g.completions]
        metrics.update(logprob_mismatch(sampled, [o for g in recomputed for o in g.old or []]))
    lengths: dict[str, list[int]] = defaultdict(list)
    truncated: dict[str, list[bool]] = defaultdict(list)
    for group in groups:
        for completion in group.completions:
            lengths[group.agent].append(completion.num_tokens)
            truncated[group.agent].append(completion.finish_reason == "length")
    for agent in sorted(lengths):
        metrics[f"completion_tokens/{agent}"] = statistics.fmean(lengths[agent])
        metrics[f"truncated/{agent}"] = statistics.fmean(map(float, truncated[agent]))
    return metrics
