"""The group loss on hand-computed values: aggregation, clipping, KL and their gradients."""

from __future__ import annotations

import math

import pytest
import torch

from llm_marl.baselines.losses import group_loss


def _leaf(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, requires_grad=True)


def test_sequence_sum_is_the_papers_loss_and_gradient() -> None:
    a, b = _leaf([-1.0, -2.0]), _leaf([-0.5, -0.5, -1.0])
    advantages = torch.tensor([1.0, -2.0])
    out = group_loss([a, b], advantages)
    # -(1/G) * sum_g A_g * sum_t logp: -(1 * -3 + -2 * -2) / 2 = -0.5
    assert out.loss.item() == pytest.approx(-0.5)
    out.loss.backward()
    assert a.grad is not None and b.grad is not None
    assert torch.allclose(a.grad, torch.tensor([-0.5, -0.5]))  # -A_g / G per token
    assert torch.allclose(b.grad, torch.tensor([1.0, 1.0, 1.0]))
    assert out.tokens == 5 and out.kl == 0 and out.clip_fraction == 0


def test_token_mean_averages_within_each_response() -> None:
    a, b = _leaf([-1.0, -2.0]), _leaf([-0.5, -0.5, -1.0])
    out = group_loss([a, b], torch.tensor([1.0, -2.0]), aggregation="token_mean")
    # -(1 * -1.5 + -2 * (-2 / 3)) / 2
    assert out.loss.item() == pytest.approx(-(-1.5 + 4 / 3) / 2)
    out.loss.backward()
    assert b.grad is not None
    assert torch.allclose(b.grad, torch.full((3,), 1 / 3))


def test_clipping_bounds_the_ratio_and_stops_its_gradient() -> None:
    old = [torch.tensor([0.0, 0.0])]
    # ratios exp(0.5) ~ 1.65 (clipped at 1.2 for a positive advantage) and exp(-0.1) ~ 0.905
    new = _leaf([0.5, -0.1])
    out = group_loss([new], torch.tensor([1.0]), old_logprobs=old, clip_epsilon=0.2)
    expected = -(1.2 + math.exp(-0.1))
    assert out.loss.item() == pytest.approx(expected, rel=1e-6)
    assert out.clip_fraction == pytest.approx(0.5)
    out.loss.backward()
    assert new.grad is not None
    assert new.grad[0].item() == 0.0  # clipped token: no gradient
    assert new.grad[1].item() == pytest.approx(-math.exp(-0.1))


def test_clipping_keeps_the_pessimistic_side_for_negative_advantages() -> None:
    new = _leaf([0.5])  # ratio 1.65 with A < 0: min(1.65 * -1, 1.2 * -1) keeps the ratio
    out = group_loss([new], torch.tensor([-1.0]), old_logprobs=[torch.zeros(1)], clip_epsilon=0.2)
    assert out.loss.item() == pytest.approx(math.exp(0.5))
    assert out.clip_fraction == 1.0  # the ratio is outside the range (counted) ...
    out.loss.backward()
    assert new.grad is not None and new.grad.item() != 0.0  # ... but still pushed back


def test_kl_term_uses_the_k3_estimator() -> None:
    new, ref = _leaf([-1.0, -1.0]), [torch.tensor([-1.0, -2.0])]
    out = group_loss([new], torch.tensor([0.0]), reference_logprobs=ref, kl_beta=0.5)
    kl_tokens = [0.0, math.exp(-1.0) - (-1.0) - 1]  # exp(d) - d - 1 with d = ref - new
    assert out.kl == pytest.approx(sum(kl_tokens) / 2)
    assert out.loss.item() == pytest.approx(0.5 * sum(kl_tokens))
    off = group_loss([new], torch.tensor([0.0]), reference_logprobs=ref, kl_beta=0.0)
    assert off.loss.item() == 0.0


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="aggregation must be one of"):
        group_loss([_leaf([0.0])], torch.tensor([1.0]), aggregation="sum")
    with pytest.raises(ValueError, match="2 responses but 1 advantages"):
        group_loss([_leaf([0.0]), _leaf([0.0])], torch.tensor([1.0]))
    with pytest.raises(ValueError, match="clipping needs old_logprobs"):
        group_loss([_leaf([0.0])], torch.tensor([1.0]), clip_epsilon=0.2)


def test_tis_weights_each_token_term_by_the_capped_ratio() -> None:
    """Truncated importance sampling: each token's term times min(exp(old - sampler), cap),
    detached; weights of 1 (old == sampler) give the plain loss."""
    new = _leaf([-1.0, -2.0])
    old = [torch.tensor([-1.0, -2.0])]
    sampler = [torch.tensor([-1.0 - math.log(0.5), -2.0 - math.log(4.0)])]  # ratios 0.5, 4
    out = group_loss(
        [new], torch.tensor([1.0]), old_logprobs=old, sampler_logprobs=sampler, tis_cap=2.0
    )
    assert out.loss.item() == pytest.approx(-(0.5 * -1.0 + 2.0 * -2.0))
    out.loss.backward()
    assert new.grad is not None
    assert torch.allclose(new.grad, torch.tensor([-0.5, -2.0]))  # the weights, no grad of theirs
    plain, same = _leaf([-1.0, -2.0]), _leaf([-1.0, -2.0])
    ones = group_loss(
        [same], torch.tensor([1.0]), old_logprobs=old, sampler_logprobs=old, tis_cap=2.0
    )
    assert ones.loss.item() == group_loss([plain], torch.tensor([1.0])).loss.item()
    with pytest.raises(ValueError, match="tis_cap needs"):
        group_loss([new], torch.tensor([1.0]), tis_cap=2.0)
