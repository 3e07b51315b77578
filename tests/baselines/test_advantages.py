"""Group advantages on hand-computed groups, for every baseline mode."""

from __future__ import annotations

import pytest
import torch

from llm_marl.baselines.advantages import group_advantages

RETURNS = torch.tensor([1.0, 2.0, 3.0, 6.0])  # mean 3, max 6, population std sqrt(3.5)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("mean", [-2.0, -1.0, 0.0, 3.0]),
        # leave-one-out: R_g - (12 - R_g) / 3
        ("rloo", [1 - 11 / 3, 2 - 10 / 3, 3 - 9 / 3, 6 - 6 / 3]),
        ("max", [-5.0, -4.0, -3.0, 0.0]),
        ("raw", [1.0, 2.0, 3.0, 6.0]),
    ],
)
def test_each_mode_on_a_hand_computed_group(mode: str, expected: list[float]) -> None:
    assert torch.allclose(group_advantages(RETURNS, mode), torch.tensor(expected))


def test_scaling_divides_by_the_population_std() -> None:
    std = (sum((r - 3.0) ** 2 for r in [1.0, 2.0, 3.0, 6.0]) / 4) ** 0.5
    scaled = group_advantages(RETURNS, "mean", scale_by_std=True)
    assert torch.allclose(scaled, torch.tensor([-2.0, -1.0, 0.0, 3.0]) / std)


def test_equal_returns_give_zero_advantages_and_are_not_blown_up() -> None:
    same = torch.full((4,), 0.7)
    assert torch.equal(group_advantages(same, "mean", scale_by_std=True), torch.zeros(4))
    # raw mode keeps the returns: no division by a zero std
    assert torch.allclose(group_advantages(same, "raw", scale_by_std=True), same)


def test_rloo_of_a_group_of_one_is_zero() -> None:
    assert torch.equal(group_advantages(torch.tensor([2.5]), "rloo"), torch.zeros(1))


def test_mean_rloo_advantages_sum_to_zero() -> None:
    returns = torch.rand(6)
    assert abs(float(group_advantages(returns, "mean").sum())) < 1e-6
    assert abs(float(group_advantages(returns, "rloo").sum())) < 1e-6


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="advantage mode must be one of"):
        group_advantages(RETURNS, "median")
    with pytest.raises(ValueError, match=r"non-empty \(G,\) tensor"):
        group_advantages(torch.zeros(2, 2))
