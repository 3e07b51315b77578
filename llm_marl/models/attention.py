"""Grouped-query attention for the loss's passes on a CPU, as a transformers attention function.

transformers' ``sdpa`` attention repeats each key/value head for the query heads that read it
(``repeat_kv``) whenever there is a mask, and PyTorch's CPU flash-attention backward is slow on
the loss's shapes. :func:`grouped_attention` runs the query heads of one key/value head as one
product (no repeated keys or values) with a float32 softmax, as transformers' ``eager``
attention computes it: on the demo step's shapes (SmolLM2-135M, 9 query and 3 key/value heads,
bfloat16 autocast) forward plus backward of a layer measured 17 ms instead of 28 (two ~340-token
prompts) and 14 ms instead of 37 (8 completions of 63 tokens on a 405-column cache). Its
weights are kept for the backward pass (in the activations' dtype), so layers with more than
:data:`GROUPED_MAX_WEIGHTS` of them still go to ``sdpa``.

:func:`grouped_attention_in` switches a model to it for the duration of a ``with`` block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["GROUPED_ATTENTION", "GROUPED_MAX_WEIGHTS", "grouped_attention", "grouped_attention_in"]

#: The name :func:`grouped_attention` is registered under with transformers.
GROUPED_ATTENTION = "llm_marl_grouped"

#: The most attention weights ``B * H * T * S`` one layer computes this way (its weights are
#: kept for the backward pass: 16 MB of bfloat16 at most); larger layers go to ``sdpa``.
GROUPED_MAX_WEIGHTS = 1 << 23


def grouped_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Attention of ``query (B, H, T, D)`` over ``key``/``value (B, KV, S, D)`` with an additive
    ``attention_mask (B, 1, T, S)`` (transformers' eager mask); ``(B, T, H, D)`` and the
    weights ``(B, H, T, S)``."""
    B, H, T, D = query.shape
    KV, S = key.shape[1], key.shape[2]
    if B * H * T * S > GROUPED_MAX_WEIGHTS:  # its weights are kept for backward: too large
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(  # type: ignore[no-any-return]
            module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
        )
    groups = H // KV
    # Query head h reads key head h // groups: the groups of a key head as one product.
    scores = torch.matmul(query.reshape(B, KV, groups * T, D), key.transpose(2, 3))
    scores = scores.view(B, KV, groups, T, S) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask[:, :, None, :, :S]
    weights = _SoftmaxIn.apply(scores, query.dtype)
    weights = torch.nn.functional.dropout(weights, p=dropout, training=module.training)
    attended = torch.matmul(weights.view(B, KV, groups * T, S), value)  # (B, KV, g * T, D)
    out = attended.view(B, H, T, D).transpose(1, 2).contiguous()
    return out, weights.view(B, H, T, S)


class _SoftmaxIn(torch.autograd.Function):
    """``softmax(scores)`` over the last dimension, computed in float32 and returned (and kept
    for backward) in ``dtype`` only: a third of the memory of autograd's float32 softmax plus
    its cast, for each layer's ``(B, H, T, S)`` weights."""

    @staticmethod
    def forward(ctx: Any, scores: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:  # type: ignore[override]
        weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(dtype)
        ctx.save_for_backward(weights)
        ctx.scores_dtype = scores.dtype
        return weights

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (weights,) = ctx.saved_tensors
        w, g = weights.float(), grad.float()
        return (w * (g - (g * w).sum(dim=-1, keepdim=True))).to(ctx.scores_dtype), None


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(GROUPED_ATTENTION, grouped_attention)
    AttentionMaskInterface.register(GROUPED_ATTENTION, eager_mask)


@contextlib.contextmanager
def grouped_attention_in(model: Any) -> Iterator[None]:
    """Within the block, ``model`` (PEFT-wrapped or not) attends with
    :func:`grouped_attention` where it would use ``sdpa`` on a CPU; elsewhere unchanged."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(base, "config", None)
    device = next(base.parameters()).device
    if (
        config is None
        or device.type != "cpu"
        or getattr(config, "_attn_implementation", None) != "sdpa"
    ):
        yield
        return
    _register()
    config._attn_implementation = GROUPED_ATTENTION
    try:
        yield
    finally:
        config._attn_implementation = "sdpa"
