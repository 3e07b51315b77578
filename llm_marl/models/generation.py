"""Batched sampling: many prompts, G samples each, one ``generate`` call, then log-probs.

Prompts are left-padded so every completion starts at the same column; a PEFT model with
several LoRA adapters samples all agents' rows in the same call (``adapter_names``, one per
row). The log-probability of each sampled token is recorded during sampling, from the raw
logits at the sampling temperature (before top-k/top-p truncation), so no second forward pass
is needed; it equals what :func:`~llm_marl.models.logprobs.completion_logprobs` recomputes for
the loss up to float rounding (the cached incremental pass and the full pass sum in different
orders).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from transformers import (
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from llm_marl.models.decode import FusedDecoding, fused_generate, resolve_dtype, unsupported_reason
from llm_marl.models.logprobs import left_pad
from llm_marl.models.prefix import cache_argument, group_prompts, returned_cache, run_prompts
from llm_marl.models.routing import per_row_adapters
from llm_marl.models.sampling import Completion, FinishReason, SamplingConfig

__all__ = ["REPLACEMENT_CHARACTER", "decode_text", "eos_ids", "format_prompt", "sample_completions"]

#: What a tokenizer decodes an incomplete UTF-8 sequence to.
REPLACEMENT_CHARACTER = "\ufffd"


def format_prompt(tokenizer: Any, prompt: str, chat_template: bool) -> list[int]:
    """Token ids of ``prompt``: as one user message in the chat template when asked and
    available, else the raw text (with the tokenizer's usual special tokens)."""
    if chat_template and getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": prompt}]
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):  # BatchEncoding in newer versions
            ids = ids["input_ids"]
        return list(ids)
    return list(tokenizer(prompt)["input_ids"])


def decode_text(tokenizer: Any, ids: Any) -> str:
    """The text of token ``ids`` without a character cut short at its end.

    Generation can stop between the bytes of one character (a byte-level tokenizer spells an
    emoji in several tokens); those bytes alone decode to U+FFFD, which is not text the model
    meant, so it is dropped. The tokens themselves are kept for the loss.
    """
    return str(tokenizer.decode(ids, skip_special_tokens=True)).rstrip(REPLACEMENT_CHARACTER)


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """Every token id that ends a completion: the tokenizer's EOS and the model's."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    if not ids:
        raise ValueError("the tokenizer has no EOS token: completions could never end")
    return ids


def sample_completions(
    model: Any,
    tokenizer: Any,
    requests: Sequence[tuple[str, str]],
    config: SamplingConfig,
    *,
    adapter_of: dict[str, str] | None = None,
    fused: FusedDecoding | None = None,
) -> list[list[Completion]]:
    """Sample ``config.num_samples`` completions for each ``(agent, prompt)`` request.

    ``adapter_of`` maps each agent to its LoRA adapter name on a PEFT ``model``; without it the
    model is used as it is. ``fused``: sample with the lean decode loop of
    :mod:`~llm_marl.models.decode` instead of HF ``generate`` (Llama-family models). Returns
    one list of completions per request, in request order.
    """
    if not requests:
        return []
    if fused is not None:
        if not isinstance(fused, FusedDecoding):
            raise TypeError(
                f"fused must be a FusedDecoding (e.g. FusedDecoding('auto')) or None, got {fused!r}"
            )
        reason = unsupported_reason(model)
        if reason is not None:
            raise ValueError(f"the fused sampler cannot run this model: {reason}; use the hf one")
    prompt_ids = [
        torch.tensor(format_prompt(tokenizer, prompt, config.chat_template), dtype=torch.long)
        for _, prompt in requests
    ]
    for (agent, _), ids in zip(requests, prompt_ids, strict=True):
        if ids.shape[0] == 0:
            raise ValueError(
                f"the prompt of agent {agent!r} has no tokens: give a non-empty prompt, or "
                "chat_template=True (the template adds its own tokens)"
            )
        if config.max_prompt_tokens is not None:
            if ids.shape[0] > config.max_prompt_tokens:
                raise ValueError(
                    f"the prompt of agent {agent!r} has {ids.shape[0]} tokens, over "
                    f"max_prompt_tokens={config.max_prompt_tokens}; shorten it or raise the bound"
                )
    G = config.num_samples
    rows = [(i, ids) for i, ids in enumerate(prompt_ids) for _ in range(G)]  # request-major
    step = config.batch_size or len(rows)
    stops = eos_ids(model, tokenizer)
    sampled: list[tuple[torch.Tensor, torch.Tensor]] = []
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        adapters = None
        if adapter_of is not None:
            adapters = [adapter_of[requests[i][0]] for i, _ in chunk]
        chunk_ids = [ids for _, ids in chunk]
        sampled.extend(_generate(model, tokenizer, chunk_ids, config, adapters, stops, fused))
    out: list[list[Completion]] = [[] for _ in requests]
    for (i, ids), (new_tokens, new_logprobs) in zip(rows, sampled, strict=True):
        agent, prompt = requests[i]
        tokens, reason = _finish(tokenizer, new_tokens, stops, config.stop)
        text_ids = tokens[:-1] if reason == "eos" else tokens
        text = decode_text(tokenizer, text_ids)
        logprobs = new_logprobs[: tokens.shape[0]].clone()
        out[i].append(
            Completion(
                agent,
                prompt,
                text,
                ids,
                tokens.clone(),
                logprobs,
                reason,
                temperature=config.logprob_temperature,
            )
        )
    return out


class _LogprobRecorder(LogitsProcessor):
    """Records, step by step, the log-probability of each sampled token at ``temperature``.

    It runs first, on the raw logits, and keeps only one ``(B, V)`` distribution at a time:
    the token sampled from step t is known at step t + 1 (the last column of ``input_ids``).
    """

    def __init__(self, temperature: float) -> None:
        self.temperature = temperature
        self.pending: torch.Tensor | None = None  # (B, V) log-probs of the last step
        self.picked: list[torch.Tensor] = []  # one (B,) tensor per sampled token

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self._collect(input_ids[:, -1])
        self.pending = torch.log_softmax(scores.float() / self.temperature, dim=-1)
        return scores

    def _collect(self, tokens: torch.Tensor) -> None:
        if self.pending is not None:
            self.picked.append(self.pending.gather(1, tokens[:, None])[:, 0])
            self.pending = None

    def finish(self, last_tokens: torch.Tensor) -> torch.Tensor:
        """The ``(B, T)`` log-probs, given the tokens of the final step."""
        self._collect(last_tokens)
        return torch.stack(self.picked, dim=1)


class _StopStrings(StoppingCriteria):
    """Ends a row once its completion (never its prompt) contains a stop string.

    It decodes the completion's tail the same way :func:`_finish` decodes the whole
    completion, so both agree on where a completion stops.
    """

    def __init__(self, tokenizer: Any, stop: tuple[str, ...], prompt_width: int) -> None:
        self.tokenizer, self.stop, self.prompt_width = tokenizer, stop, prompt_width
        # A stop string of n characters lies within the last n tokens that decode to text.
        self.window = max(len(s) for s in stop) + 2

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        return self.completed(input_ids[:, self.prompt_width :])

    def completed(self, new_tokens: torch.Tensor) -> torch.BoolTensor:
        """``(B,)``: which rows of completions ``new_tokens (B, t)`` hold a stop string."""
        tail = new_tokens[:, -self.window :]  # (B, <= window)
        texts = self.tokenizer.batch_decode(tail, skip_special_tokens=True)
        done = [any(s in text for s in self.stop) for text in texts]
        return torch.tensor(done, dtype=torch.bool, device=new_tokens.device)  # type: ignore[return-value]


def _generate(
    model: Any,
    tokenizer: Any,
    prompts: list[torch.Tensor],
    config: SamplingConfig,
    adapters: list[str] | None,
    stops: set[int],
    fused: FusedDecoding | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One ``generate`` call (or one :func:`~llm_marl.models.decode.fused_generate` call with
    ``fused``); each row's new tokens (padding after EOS included) and their log-probabilities
    under the sampling distribution before truncation. ``stops``: EOS ids."""
    pad_id = _pad_id(tokenizer)
    device = next(model.parameters()).device
    if fused is not None:
        stopped = _StopStrings(tokenizer, config.stop, 0).completed if config.stop else None
        return fused_generate(
            model,
            prompts,
            adapters,
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            top_k=config.top_k,
            top_p=config.top_p,
            logprob_temperature=config.logprob_temperature,
            pad_id=pad_id,
            stops=stops,
            stopped=stopped,
            dtype=resolve_dtype(fused.dtype, device),
        )
    ids, mask = left_pad(prompts, pad_id)  # (B, P)
    generation_config = GenerationConfig(
        max_new_tokens=config.max_new_tokens,
        do_sample=not config.greedy,
        pad_token_id=pad_id,
        eos_token_id=sorted(stops),
    )
    if not config.greedy:  # neutral values, so generate builds no warpers of its own
        generation_config.update(temperature=1.0, top_p=1.0, top_k=0)
    recorder = _LogprobRecorder(config.logprob_temperature)
    processors = LogitsProcessorList([recorder])  # then our warpers, after the recorder
    if not config.greedy:
        processors.append(TemperatureLogitsWarper(config.temperature))
        if config.top_k:
            processors.append(TopKLogitsWarper(config.top_k))
        if config.top_p < 1:
            processors.append(TopPLogitsWarper(config.top_p))
    criteria = StoppingCriteriaList()
    if config.stop:
        criteria.append(_StopStrings(tokenizer, config.stop, ids.shape[1]))
    kwargs: dict[str, Any] = {
        "generation_config": generation_config,
        "logits_processor": processors,
        "stopping_criteria": criteria,
    }
    with torch.no_grad():
        kwargs.update(_shared_prompt_cache(model, prompts, adapters, pad_id, device))
    routing, extra = per_row_adapters(model, adapters)
    with torch.no_grad(), routing, _without_model_defaults(model):
        sequences = model.generate(
            input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs, **extra
        )  # (B, P + T)
    new = sequences[:, ids.shape[1] :]  # (B, T)
    logprobs = recorder.finish(new[:, -1])  # (B, T)
    return list(zip(new.cpu(), logprobs.cpu(), strict=True))


def _shared_prompt_cache(
    model: Any,
    prompts: list[torch.Tensor],
    adapters: list[str] | None,
    pad_id: int,
    device: torch.device,
) -> dict[str, Any]:
    """The KV cache of every prompt but its last token, computed once per distinct prompt and
    copied to its rows; ``generate`` then runs only the last prompt token of each row.

    Empty (generate prefills every row itself) when no prompt is shared, a prompt has a
    single token, or the model takes PEFT's own adapter routing (``adapter_names``).
    """
    groups = group_prompts(prompts, adapters)
    width = max(int(p.shape[0]) for p in prompts)
    routing, extra = per_row_adapters(model, groups.adapters)
    if not groups.shared or width < 2 or extra:
        return {}
    ids, mask = left_pad(groups.prompts, pad_id)  # (U, P), the same width as the rows'
    ids, mask = ids[:, :-1].to(device), mask[:, :-1].to(device)  # (U, P - 1)
    with routing:
        output = run_prompts(model, ids, mask, logits_to_keep=1)
    cache = returned_cache(output)
    cache.reorder_cache(groups.owner.to(device))  # (U, ...) -> (B, ...)
    return {cache_argument(model): cache}


@contextlib.contextmanager
def _without_model_defaults(model: Any) -> Iterator[None]:
    """Hide the model's own generation defaults for the duration of a ``generate`` call.

    transformers fills every setting a call leaves unset from ``model.generation_config``, so a
    repetition penalty or a minimum length shipped with a model would reshape the logits before
    the recorder and bias the recorded log-probs; a blank config leaves only ours.
    """
    target = model.get_base_model() if hasattr(model, "get_base_model") else model
    saved = target.generation_config
    target.generation_config = GenerationConfig()
    try:
        yield
    finally:
        target.generation_config = saved


def _finish(
    tokenizer: Any, tokens: torch.Tensor, eos: set[int], stop: tuple[str, ...]
) -> tuple[torch.Tensor, FinishReason]:
    """Cut a row of new tokens at its first EOS (kept) or the end of its first stop string."""
    ends = [i for i, t in enumerate(tokens.tolist()) if t in eos]
    length, reason = (ends[0] + 1, "eos") if ends else (int(tokens.shape[0]), "length")
    if stop:
        body = tokens[: length - 1] if reason == "eos" else tokens[:length]
        stop_at = _stop_length(tokenizer, body, stop)
        if stop_at is not None:
            return tokens[:stop_at], "stop"
    return tokens[:length], reason  # type: ignore[return-value]


def _stop_length(tokenizer: Any, tokens: torch.Tensor, stop: tuple[str, ...]) -> int | None:
    """Fewest leading tokens whose text contains a stop string, or None (binary search)."""

    def has_stop(n: int) -> bool:
        text = tokenizer.decode(tokens[:n], skip_special_tokens=True)
        return any(s in text for s in stop)

    if not has_stop(int(tokens.shape[0])):
        return None
    low, high = 1, int(tokens.shape[0])
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if has_stop(mid) else (mid + 1, high)
    return low


def _pad_id(tokenizer: Any) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise ValueError("the tokenizer has neither a pad nor an EOS token")
    return int(pad)
