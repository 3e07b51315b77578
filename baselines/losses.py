"""The policy-gradient loss of one group: aggregation, optional clipping and KL, chosen once.

For agent i and a group of G responses with advantages A_g, the paper's loss is
``-(1/G) * sum_g A_g * sum_t log pi_i(a_g,t | ...)``: only the response's own tokens count
(the prompt and padding never reach here). Options: ``token_mean`` averages the token terms of
each response instead of summing them; ``clip_epsilon > 0`` replaces ``log pi`` by PPO's clipped
importance ratio against the sampling policy; ``kl_beta > 0`` adds ``beta`` times the k3
estimate of KL(pi || pi_ref), aggregated the same way; ``tis_cap`` multiplies each token's
policy-gradient term by the truncated importance weight ``min(pi_old / q, tis_cap)`` (detached),
where ``q`` is the sampler's probability (another engine's kernels, say) and ``pi_old`` the
trainer's own before the update.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

__all__ = ["AGGREGATIONS", "GroupLoss", "group_loss"]


def _sequence_sum(terms: torch.Tensor) -> torch.Tensor:
    """Sum of a response's token terms (the paper)."""
    return terms.sum()


def _token_mean(terms: torch.Tensor) -> torch.Tensor:
    """Mean of a response's token terms (0 for an empty response)."""
    return terms.mean() if terms.numel() else terms.sum()


AGGREGATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sequence_sum": _sequence_sum,
    "token_mean": _token_mean,
}


@dataclass(frozen=True)
class GroupLoss:
    """The loss of one group and what it measured on the way."""

    loss: torch.Tensor
    """Scalar to minimise (grad flows into the current policy's log-probs)."""
    kl: float
    """Mean per-token KL estimate to the reference (0 without reference log-probs)."""
    clip_fraction: float
    """Fraction of tokens whose ratio left [1 - epsilon, 1 + epsilon] (0 without clipping)."""
    tokens: int
    """Response tokens in the group."""


def group_loss(
    logprobs: Sequence[torch.Tensor],
    advantages: torch.Tensor,
    *,
    aggregation: str = "sequence_sum",
    old_logprobs: Sequence[torch.Tensor] | None = None,
    clip_epsilon: float = 0.0,
    reference_logprobs: Sequence[torch.Tensor] | None = None,
    kl_beta: float = 0.0,
    sampler_logprobs: Sequence[torch.Tensor] | None = None,
    tis_cap: float | None = None,
) -> GroupLoss:
    """The loss of G responses of one agent to one prompt.

    Args:
        logprobs: per response, its ``(T_g,)`` token log-probs under the current policy.
        advantages: ``(G,)`` advantages, constants.
        aggregation: ``"sequence_sum"`` or ``"token_mean"``.
        old_logprobs: the sampling policy's ``(T_g,)`` log-probs; needed for clipping.
        clip_epsilon: PPO clip range; 0 gives the plain policy gradient on ``log pi``.
        reference_logprobs: the reference policy's ``(T_g,)`` log-probs, for the KL term.
        kl_beta: weight of the KL term.
        sampler_logprobs: the ``(T_g,)`` log-probs the sampler recorded; needed for TIS.
        tis_cap: cap of the truncated importance weight ``exp(old - sampler)``; None: off.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {list(AGGREGATIONS)}, got {aggregation!r}")
    if len(logprobs) != advantages.shape[0]:
        raise ValueError(f"{len(logprobs)} responses but {advantages.shape[0]} advantages")
    if clip_epsilon > 0 and old_logprobs is None:
        raise ValueError("clipping needs old_logprobs (the sampling policy's log-probs)")
    if tis_cap is not None and (old_logprobs is None or sampler_logprobs is None):
        raise ValueError("tis_cap needs old_logprobs and sampler_logprobs")
    aggregate = AGGREGATIONS[aggregation]
    per_response, kl_sum, clipped, tokens = [], 0.0, 0, 0
    for g, new in enumerate(logprobs):
        advantage = advantages[g].detach()
        if clip_epsilon > 0:
            assert old_logprobs is not None
            ratio = torch.exp(new - old_logprobs[g].to(new.device).detach())  # (T_g,)
            bounded = ratio.clamp(1 - clip_epsilon, 1 + clip_epsilon)
            terms = torch.minimum(ratio * advantage, bounded * advantage)
            clipped += int(((ratio - bounded).abs() > 0).sum())
        else:
            terms = new * advantage  # (T_g,)
        if tis_cap is not None:
            assert old_logprobs is not None and sampler_logprobs is not None
            terms = terms * _tis_weight(old_logprobs[g], sampler_logprobs[g], tis_cap, new)
        objective = aggregate(terms)
        if reference_logprobs is not None and kl_beta > 0:
            delta = reference_logprobs[g].to(new.device).detach() - new  # log(ref / pi)
            kl = torch.exp(delta) - delta - 1  # k3 estimator, >= 0, (T_g,)
            objective = objective - kl_beta * aggregate(kl)
            kl_sum += float(kl.detach().sum())
        per_response.append(-objective)
        tokens += int(new.shape[0])
    loss = torch.stack(per_response).mean()
    return GroupLoss(
        loss=loss,
        kl=kl_sum / max(tokens, 1),
        clip_fraction=clipped / max(tokens, 1),
        tokens=tokens,
    )


def _tis_weight(
    old: torch.Tensor, sampler: torch.Tensor, cap: float, like: torch.Tensor
) -> torch.Tensor:
    """``(T_g,)`` detached weights ``min(exp(old - sampler), cap)`` on ``like``'s device."""
    log_ratio = old.to(like.device).detach() - sampler.to(like.device).detach()
    return torch.exp(log_ratio).clamp(max=cap)
