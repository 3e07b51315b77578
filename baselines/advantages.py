"""Group-relative advantages: one function per baseline, chosen once by name.

A group is the G returns of one agent's G samples at one node of the rollout tree (in aligned
mode, the G sibling joint actions; in cross mode, each sample's mean over the joint actions it
takes part in). Every function maps a ``(G,)`` tensor of returns to ``(G,)`` advantages.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["ADVANTAGES", "group_advantages", "scale_by_group_std"]

#: A standard deviation below this counts as zero (every return equal): no scaling then.
STD_FLOOR = 1e-6


def _mean_baseline(returns: torch.Tensor) -> torch.Tensor:
    """A_g = R_g - mean(R): the paper's default."""
    return returns - returns.mean()


def _leave_one_out(returns: torch.Tensor) -> torch.Tensor:
    """A_g = R_g - mean of the other G-1 returns (RLOO); 0 for a group of one."""
    size = returns.shape[0]
    if size == 1:
        return torch.zeros_like(returns)
    others = (returns.sum() - returns) / (size - 1)  # (G,)
    return returns - others


def _max_baseline(returns: torch.Tensor) -> torch.Tensor:
    """A_g = R_g - max(R): the best sibling gets 0, every other one is pushed down."""
    return returns - returns.max()


def _no_baseline(returns: torch.Tensor) -> torch.Tensor:
    """A_g = R_g: plain (MA-)REINFORCE."""
    return returns.clone()


ADVANTAGES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "mean": _mean_baseline,
    "rloo": _leave_one_out,
    "max": _max_baseline,
    "raw": _no_baseline,
}


def group_advantages(
    returns: torch.Tensor, mode: str = "mean", *, scale_by_std: bool = False
) -> torch.Tensor:
    """Advantages of one group's ``(G,)`` returns under baseline ``mode``.

    With ``scale_by_std`` the result is divided by the returns' population standard deviation,
    unless every return is equal (std below ``STD_FLOOR``): dividing by ~0 would blow a group
    with no signal up into a huge one.
    """
    if mode not in ADVANTAGES:
        raise ValueError(f"advantage mode must be one of {list(ADVANTAGES)}, got {mode!r}")
    if returns.dim() != 1 or returns.shape[0] == 0:
        raise ValueError(
            f"returns must be a non-empty (G,) tensor, got shape {tuple(returns.shape)}"
        )
    advantages = ADVANTAGES[mode](returns.to(torch.float32))
    return scale_by_group_std(advantages, returns) if scale_by_std else advantages


def scale_by_group_std(advantages: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """``advantages`` divided by the population std of ``returns``, unless every return is
    equal (std below ``STD_FLOOR``): dividing by ~0 would blow a group with no signal up."""
    std = returns.to(torch.float32).std(unbiased=False)
    return advantages / std if std > STD_FLOOR else advantages
