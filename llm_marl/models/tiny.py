"""A tiny random Llama with a character tokenizer, built in code, for tests and smoke runs.

``load_policy("tiny")`` uses it: a few hundred thousand parameters, a vocabulary of the
printable ASCII characters plus three special tokens, a ChatML-like chat template. Steps take
milliseconds on a CPU, so tests can generate, compute losses and train for real. It is random:
its text is noise until it is trained.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

__all__ = ["TINY", "TinyLlamaSpec", "tiny_llama", "tiny_tokenizer"]

#: The name that selects the tiny model in :func:`llm_marl.models.load_policy`.
TINY = "tiny"

_SPECIALS = ("<pad>", "<eos>", "<unk>")
_CHAT_TEMPLATE = (
    "{% for message in messages %}<{{ message['role'] }}>{{ message['content'] }}<eos>{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


@dataclass(frozen=True)
class TinyLlamaSpec:
    """Shape of the tiny model; the defaults give about 0.2 M parameters."""

    hidden_size: int = 64
    """Width of the residual stream."""
    intermediate_size: int = 128
    """Width of the MLP."""
    num_hidden_layers: int = 2
    """Transformer blocks."""
    num_attention_heads: int = 4
    """Attention heads (head size 16 with the defaults)."""
    max_position_embeddings: int = 1024
    """Longest sequence (prompt plus completion) in tokens."""
    seed: int = 0
    """Seed of the random initial weights."""


def tiny_tokenizer() -> Any:
    """A character-level ``PreTrainedTokenizerFast``: printable ASCII, ``<pad>``, ``<eos>``.

    Characters outside printable ASCII map to ``<unk>``. Decoding joins characters back
    without separators, so ``decode(encode(text)) == text`` for printable ASCII text.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = [c for c in string.printable if c not in "\x0b\x0c"]
    vocab = {token: i for i, token in enumerate([*_SPECIALS, *chars])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="<eos>",
        unk_token="<unk>",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = _CHAT_TEMPLATE
    return tokenizer


def tiny_llama(spec: TinyLlamaSpec | None = None) -> tuple[Any, Any]:
    """A randomly initialised ``LlamaForCausalLM`` and its character tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    spec = spec or TinyLlamaSpec()
    tokenizer = tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_attention_heads,
        max_position_embeddings=spec.max_position_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, tokenizer
