"""Small random models built in the tests (nothing downloaded)."""

from __future__ import annotations

from typing import Any

from transformers import LlamaConfig, LlamaForCausalLM


def small_llama(**overrides: Any) -> LlamaForCausalLM:
    """A random one-layer Llama with grouped-query attention (2 query heads, 1 key/value
    head, 64-token vocabulary); ``overrides`` change any config field."""
    settings: dict[str, Any] = {
        "vocab_size": 64,
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
    }
    return LlamaForCausalLM(LlamaConfig(**{**settings, **overrides}))
