"""Groups, masks and gradient accumulation of an update, with the tiny model."""

from __future__ import annotations

import pytest
import torch

from llm_marl.baselines.update import Group, LossSettings, backpropagate
from llm_marl.models import SamplingConfig, load_policy


@pytest.fixture(scope="module")
def team_and_groups():  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    team = load_policy("tiny", agents=["a_0", "b_1"])
    sampling = SamplingConfig(num_samples=3, max_new_tokens=12)
    outs = team.generate([("a_0", "first prompt"), ("b_1", "a longer second prompt")], sampling)
    groups = [
        Group(agent, 0, list(completions), [0.0] * 3, torch.tensor([1.0, -0.5, -0.5]))
        for agent, completions in zip(["a_0", "b_1"], outs, strict=True)
    ]
    return team, groups


def _grads(team) -> list[torch.Tensor]:  # type: ignore[no-untyped-def]
    grads = [p.grad.clone() for a in team.agents for p in team.trainable_parameters(a)]
    team_params = [p for a in team.agents for p in team.trainable_parameters(a)]
    for p in team_params:
        p.grad = None
    return grads


def test_the_loss_counts_only_each_responses_own_tokens(team_and_groups) -> None:  # type: ignore[no-untyped-def]
    """Batched (padded) loss = the paper's formula on each response alone, summed over agents."""
    team, groups = team_and_groups
    lengths = {c.num_tokens for g in groups for c in g.completions}
    assert len(lengths) > 1  # responses of different lengths, so padding is in play
    stats = backpropagate(team, groups, LossSettings(), scale=1.0)
    _grads(team)
    expected = 0.0
    for group in groups:
        with torch.no_grad():
            alone = [team.logprobs([c])[0] for c in group.completions]  # one row: no padding
        expected += float(
            -sum(a * lp.sum() for a, lp in zip(group.advantages, alone, strict=True)) / 3
        )
    assert stats.loss == pytest.approx(expected, rel=1e-4)
    assert stats.tokens == sum(c.num_tokens for g in groups for c in g.completions)


def test_accumulating_tasks_equals_one_update_over_all_groups(team_and_groups) -> None:  # type: ignore[no-untyped-def]
    team, groups = team_and_groups
    config = LossSettings()
    first, second = (
        [groups[0], groups[1]],
        [Group(g.agent, 0, g.completions, g.returns, -g.advantages) for g in groups],
    )
    backpropagate(team, first, config, 0.5)
    backpropagate(team, second, config, 0.5)
    accumulated = _grads(team)
    backpropagate(team, first + second, config, 1.0)
    together = _grads(team)
    for a, b in zip(accumulated, together, strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    # The two tasks' advantages are opposite: together they cancel.
    assert all(float(g.abs().max()) < 1e-5 for g in together)


def test_each_agents_gradient_reaches_only_its_own_parameters(team_and_groups) -> None:  # type: ignore[no-untyped-def]
    team, groups = team_and_groups
    backpropagate(team, [groups[0]], LossSettings(), 1.0)  # agent a_0 only
    own = [p.grad for p in team.trainable_parameters("a_0")]
    other = [p.grad for p in team.trainable_parameters("b_1")]
    assert all(g is not None for g in own) and any(float(g.abs().sum()) > 0 for g in own)  # type: ignore[union-attr]
    assert all(g is None or float(g.abs().sum()) == 0 for g in other)
    _grads_or_none(team)


def _grads_or_none(team) -> None:  # type: ignore[no-untyped-def]
    for a in team.agents:
        for p in team.trainable_parameters(a):
            p.grad = None
