"""The loss's grouped-query attention (llm_marl.models.attention) against transformers' sdpa."""

from __future__ import annotations

import contextlib

import pytest
import torch
from small_models import small_llama
from transformers import LlamaForCausalLM

from llm_marl.models import attention, completion_logprobs, logprobs


def _gqa_model() -> LlamaForCausalLM:
    """A small random Llama with grouped-query attention (4 query heads, 2 key/value heads)."""
    torch.manual_seed(0)
    model = small_llama(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        attn_implementation="sdpa",
    )
    return model.eval()


def _values_and_grads(
    model: LlamaForCausalLM, share: bool
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    prompts = [torch.tensor([3, 4, 5]), torch.tensor([3, 4, 5]), torch.arange(10, 19)]
    completions = [torch.tensor([7, 8]), torch.tensor([9]), torch.arange(20, 25)]
    values = completion_logprobs(
        model, prompts, completions, pad_id=0, temperature=0.8, share_prefix=share
    )
    loss = sum((i + 1) * v.sum() for i, v in enumerate(values))
    assert isinstance(loss, torch.Tensor)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    return [v.detach() for v in values], list(grads)


@pytest.mark.parametrize("share", [True, False])
@pytest.mark.parametrize("limit", [attention.GROUPED_MAX_WEIGHTS, 0])
def test_grouped_attention_matches_sdpa(
    monkeypatch: pytest.MonkeyPatch, share: bool, limit: int
) -> None:
    """Log-probs and gradients equal sdpa's (float32) on padded prompts and a shared prefix;
    with a limit of 0 every layer goes back to sdpa; the model's setting is restored."""
    model = _gqa_model()
    calls = []
    real = attention.grouped_attention

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(attention, "GROUPED_MAX_WEIGHTS", limit)
    monkeypatch.setattr(attention, "grouped_attention", counted)
    got, got_grads = _values_and_grads(model, share)
    assert calls, "the loss did not run the grouped attention"
    assert model.config._attn_implementation == "sdpa"
    monkeypatch.setattr(logprobs, "grouped_attention_in", lambda m: contextlib.nullcontext())
    want, want_grads = _values_and_grads(model, share)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    for a, b in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_grouped_attention_weights_sum_to_one_and_respect_the_mask() -> None:
    """Each query's weights over the keys sum to one; masked keys get none."""
    torch.manual_seed(0)
    module = torch.nn.Module()
    query, key, value = torch.randn(2, 4, 3, 8), torch.randn(2, 2, 5, 8), torch.randn(2, 2, 5, 8)
    mask = torch.zeros(2, 1, 3, 5)
    mask[1, :, :, :2] = torch.finfo(torch.float32).min  # row 1 cannot see keys 0 and 1
    out, weights = attention.grouped_attention(module, query, key, value, mask, scaling=0.5)
    assert out.shape == (2, 3, 4, 8) and weights is not None
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(2, 4, 3))
    assert float(weights[1, :, :, :2].abs().max()) == 0.0
    repeated = key.repeat_interleave(2, dim=1), value.repeat_interleave(2, dim=1)
    want = torch.softmax(query @ repeated[0].transpose(2, 3) * 0.5 + mask, dim=-1) @ repeated[1]
    torch.testing.assert_close(out, want.transpose(1, 2))
