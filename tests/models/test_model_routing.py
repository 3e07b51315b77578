"""Stacked-rank routing gives exactly PEFT's mixed-adapter batch, forward and backward."""

from __future__ import annotations

import pytest
import torch

from llm_marl.models import LoRASettings, LoRATeam, load_policy
from llm_marl.models.routing import adapters_off, per_row_adapters, routable, routed_adapters

ROWS = ["b_1", "a_0", "a_0", "b_1"]


@pytest.fixture
def team() -> LoRATeam:
    built = load_policy("tiny", agents=["a_0", "b_1"], lora=LoRASettings(r=4, alpha=8))
    assert isinstance(built, LoRATeam)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for agent in built.agents:
            for p in built.trainable_parameters(agent):
                p.add_(0.2 * torch.randn(p.shape, generator=generator))
    return built


def inputs() -> torch.Tensor:
    return torch.randint(3, 90, (len(ROWS), 7), generator=torch.Generator().manual_seed(0))


def test_routed_logits_equal_peft_mixed_batch(team: LoRATeam) -> None:
    """Row i of a routed pass equals PEFT's adapter_names pass, and differs from the base."""
    assert routable(team.model)
    ids = inputs()
    with torch.no_grad():
        expected = team.model(input_ids=ids, adapter_names=ROWS).logits
        with routed_adapters(team.model, ROWS):
            routed = team.model(input_ids=ids).logits
        with adapters_off(team.model):
            base = team.model(input_ids=ids).logits
    torch.testing.assert_close(routed, expected, atol=1e-5, rtol=0)
    assert not torch.allclose(routed, base, atol=1e-3)


def test_routed_gradients_equal_peft_mixed_batch(team: LoRATeam) -> None:
    """Each adapter gets the same gradient through the stacked matrices as through PEFT."""
    ids = inputs()

    def grads(routed: bool) -> list[torch.Tensor]:
        team.model.zero_grad()
        if routed:
            with routed_adapters(team.model, ROWS):
                loss = team.model(input_ids=ids).logits.square().mean()
        else:
            loss = team.model(input_ids=ids, adapter_names=ROWS).logits.square().mean()
        loss.backward()
        params = [p for a in team.agents for p in team.trainable_parameters(a)]
        return [p.grad.clone() for p in params]

    for a, b in zip(grads(True), grads(False), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)


def test_routing_refuses_a_batch_of_the_wrong_size(team: LoRATeam) -> None:
    """The number of row adapters must match the batch."""
    with routed_adapters(team.model, ["a_0"]), pytest.raises(ValueError, match="4 rows but 1"):
        team.model(input_ids=inputs())


def test_hooks_are_removed_and_flags_restored(team: LoRATeam) -> None:
    """After the block the model is the plain PEFT model again."""
    ids = inputs()[:1]
    team.model.set_adapter("a_0")
    with torch.no_grad():
        before = team.model(input_ids=ids).logits
        with routed_adapters(team.model, ["b_1"]):
            pass
        after = team.model(input_ids=ids).logits
    torch.testing.assert_close(before, after)


def test_models_that_cannot_be_routed_use_peft_adapter_names(
    team: LoRATeam, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without routing support the forward kwargs carry PEFT's adapter_names."""
    import llm_marl.models.routing as routing

    monkeypatch.setattr(routing, "routable", lambda model: False)
    _, kwargs = per_row_adapters(team.model, ROWS)
    assert kwargs == {"adapter_names": ROWS}
    assert per_row_adapters(team.model, None)[1] == {}


def test_an_error_inside_the_block_still_restores_the_model(team: LoRATeam) -> None:
    """Hooks and adapter flags are restored when the routed forward raises."""
    ids = inputs()[:1]
    team.model.set_adapter("a_0")
    with torch.no_grad():
        before = team.model(input_ids=ids).logits
        with pytest.raises(RuntimeError, match="boom"), routed_adapters(team.model, ["b_1"]):
            team.model(input_ids=ids)
            raise RuntimeError("boom")
        torch.testing.assert_close(team.model(input_ids=ids).logits, before)


@pytest.mark.filterwarnings("ignore:`gradient_checkpointing_enable` is deprecated:FutureWarning")
def test_gradient_checkpointing_is_refused_with_grad(team: LoRATeam) -> None:
    """The recomputed forward pass would miss the routing: refuse instead of wrong grads."""
    team.model.gradient_checkpointing_enable()
    with pytest.raises(ValueError, match="gradient checkpointing"):
        with routed_adapters(team.model, ROWS):
            pass
