"""Shared prompt prefixes: the G samples of a prompt run its tokens once, then share its cache.

A batch of ``B`` rows holds ``U`` distinct ``(adapter, prompt)`` pairs (``U = B / G`` in a
trainer's batch). Running each distinct prompt once and copying its key/value cache to its
rows (``index_select``, which gradients flow back through) costs ``U * P`` prompt tokens
instead of ``B * P``: in a demo step (two ~320-token prompts, G = 4, 64 new tokens) that is
about a third of the tokens of a full pass. Both sampling (the prefill before ``generate``)
and the loss's log-prob recomputation use it.

The loss path calls the model's decoder and output head directly, so it is enabled only for
model types whose logits are exactly ``head(decoder(x))`` (:data:`PLAIN_HEAD_MODELS`); other
models take the full pass, which is correct for every model.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "PLAIN_HEAD_MODELS",
    "PromptGroups",
    "cache_argument",
    "decoder_and_head",
    "group_prompts",
    "returned_cache",
    "run_prompts",
]

#: Model types whose causal-LM logits are the output head applied to the decoder's last
#: hidden state, with no scaling or soft-capping in between.
PLAIN_HEAD_MODELS = frozenset({"llama", "mistral", "qwen2", "qwen3"})


@dataclass(frozen=True)
class PromptGroups:
    """The distinct prompts of a batch and the distinct prompt of each row."""

    prompts: list[torch.Tensor]
    """The ``U`` distinct prompts, in order of first appearance."""
    adapters: list[str] | None
    """The adapter of each distinct prompt (None when rows have no adapters)."""
    owner: torch.Tensor
    """``(B,)`` long: the distinct prompt of each row."""

    @property
    def shared(self) -> bool:
        """True when some prompt is shared by several rows (sharing then saves work)."""
        return len(self.prompts) < int(self.owner.shape[0])


def group_prompts(prompts: Sequence[torch.Tensor], adapters: Sequence[str] | None) -> PromptGroups:
    """Group rows by identical ``(adapter, prompt tokens)``: the same prompt through another
    adapter has other keys and values, so it is a distinct prompt."""
    index: dict[tuple[str | None, tuple[int, ...]], int] = {}
    unique: list[torch.Tensor] = []
    unique_adapters: list[str] = []
    owner = []
    for row, prompt in enumerate(prompts):
        adapter = None if adapters is None else adapters[row]
        key = (adapter, tuple(prompt.tolist()))
        if key not in index:
            index[key] = len(unique)
            unique.append(prompt)
            if adapter is not None:
                unique_adapters.append(adapter)
        owner.append(index[key])
    return PromptGroups(unique, None if adapters is None else unique_adapters, torch.tensor(owner))


def decoder_and_head(model: Any) -> tuple[Any, torch.nn.Module] | None:
    """The decoder stack and output head of a causal LM (PEFT-wrapped or not), when its
    logits are ``head(decoder(x).last_hidden_state)``; None otherwise."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(base, "config", None)
    if getattr(config, "model_type", None) not in PLAIN_HEAD_MODELS:
        return None
    head = base.get_output_embeddings()
    # A LoRA-wrapped head is not a plain Linear; it would also need the routing (full pass).
    if type(head) is not torch.nn.Linear or not hasattr(base, "get_decoder"):
        return None
    return base.get_decoder(), head


def cache_argument(model: Any) -> str:
    """The keyword that passes a KV cache to ``model``'s forward and ``generate``: ``cache``
    (transformers >= 5.2x) or ``past_key_values`` (older releases)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    parameters = inspect.signature(base.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def returned_cache(output: Any) -> Any:
    """The KV cache of a forward pass's output, under either name."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def run_prompts(module: Any, ids: torch.Tensor, mask: torch.Tensor, **kwargs: Any) -> Any:
    """``module``'s forward pass (a causal LM or its decoder) over left-padded prompts
    ``(U, P)`` with their KV cache kept: positions count only real tokens."""
    return module(
        input_ids=ids,
        attention_mask=mask,
        position_ids=(mask.cumsum(dim=1) - 1).clamp(min=0),
        use_cache=True,
        **kwargs,
    )
