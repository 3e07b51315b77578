"""Per-token log-probabilities of completions under a causal LM, with padding masked out.

Sequences are laid out as ``[left padding][prompt][completion][right padding]`` with position
ids counted over real tokens only, the same positions ``generate`` uses for left-padded
prompts. Only completion tokens are scored: prompt and padding never enter a log-probability,
and extra padding leaves every value unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from llm_marl.models.attention import grouped_attention_in
from llm_marl.models.prefix import (
    cache_argument,
    decoder_and_head,
    group_prompts,
    returned_cache,
    run_prompts,
)
from llm_marl.models.routing import per_row_adapters

__all__ = ["HEAD_CHUNK_TOKENS", "batch_layout", "completion_logprobs", "head_logprobs", "left_pad"]

#: Tokens whose vocabulary-wide logits exist at once in :func:`head_logprobs` (about 50 MB of
#: float32 for a 49k vocabulary).
HEAD_CHUNK_TOKENS = 256


def left_pad(rows: Sequence[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack 1-D id tensors left-padded: ``(ids, mask)``, both ``(B, L)``."""
    width = max(int(r.shape[0]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row.shape[0]:
            ids[i, width - row.shape[0] :] = row
            mask[i, width - row.shape[0] :] = 1
    return ids, mask


def batch_layout(
    prompts: Sequence[torch.Tensor], completions: Sequence[torch.Tensor], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Input ids, attention mask, position ids (all ``(B, P + T)``) and ``T``.

    Prompts are left-padded to the longest prompt ``P``, completions right-padded to the
    longest completion ``T``, so every completion starts at column ``P``.
    """
    prompt_ids, prompt_mask = left_pad(prompts, pad_id)  # (B, P)
    width = max(int(c.shape[0]) for c in completions)
    completion_ids = torch.full((len(completions), width), pad_id, dtype=torch.long)  # (B, T)
    completion_mask = torch.zeros_like(completion_ids)
    for i, row in enumerate(completions):
        completion_ids[i, : row.shape[0]] = row
        completion_mask[i, : row.shape[0]] = 1
    ids = torch.cat([prompt_ids, completion_ids], dim=1)  # (B, P + T)
    mask = torch.cat([prompt_mask, completion_mask], dim=1)
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    return ids, mask, positions, width


def completion_logprobs(
    model: Any,
    prompts: Sequence[torch.Tensor],
    completions: Sequence[torch.Tensor],
    *,
    pad_id: int,
    temperature: float | Sequence[float] = 1.0,
    adapter_names: Sequence[str] | None = None,
    batch_size: int | None = None,
    share_prefix: bool = True,
) -> list[torch.Tensor]:
    """Log-probability of each completion token given its prompt: one ``(T_i,)`` tensor each.

    ``temperature`` is one value or one per row. Gradients flow when called with grad
    enabled. ``adapter_names`` (one per row) routes each row through its own PEFT LoRA adapter
    in the same forward pass (:func:`~llm_marl.models.routing.per_row_adapters`). Rows are
    processed in chunks of ``batch_size`` (all at once when None). ``share_prefix`` runs each
    distinct prompt once for all of its rows (:mod:`~llm_marl.models.prefix`; same values up
    to float rounding); False forces one full pass over every row.
    """
    if len(prompts) != len(completions):
        raise ValueError(f"got {len(prompts)} prompts but {len(completions)} completions")
    if adapter_names is not None and len(adapter_names) != len(prompts):
        raise ValueError(f"got {len(adapter_names)} adapter names for {len(prompts)} rows")
    if not prompts:
        return []
    temperatures = (
        [float(temperature)] * len(prompts)
        if isinstance(temperature, int | float)
        else [float(t) for t in temperature]
    )
    if len(temperatures) != len(prompts) or min(temperatures) <= 0:
        raise ValueError(f"need one positive temperature per row, got {temperature!r}")
    if min(int(p.shape[0]) for p in prompts) == 0:
        raise ValueError("every completion needs a prompt of at least one token")
    step = batch_size or len(prompts)
    device = next(model.parameters()).device
    parts = decoder_and_head(model) if share_prefix else None
    out: list[torch.Tensor] = []
    with grouped_attention_in(model):
        for start in range(0, len(prompts), step):
            out.extend(
                _chunk_logprobs(
                    model,
                    parts,
                    prompts[start : start + step],
                    completions[start : start + step],
                    None if adapter_names is None else list(adapter_names[start : start + step]),
                    temperatures[start : start + step],
                    pad_id,
                    device,
                )
            )
    return out


def _chunk_logprobs(
    model: Any,
    parts: tuple[Any, torch.nn.Module] | None,
    prompts: Sequence[torch.Tensor],
    completions: Sequence[torch.Tensor],
    names: list[str] | None,
    temperatures: list[float],
    pad_id: int,
    device: torch.device,
) -> list[torch.Tensor]:
    """:func:`completion_logprobs` of one chunk of rows."""
    if max(int(c.shape[0]) for c in completions) == 0:
        return [torch.zeros(0, device=device) for _ in completions]
    scale = torch.tensor(temperatures, device=device)  # (B,)
    routing, kwargs = per_row_adapters(model, names)
    if parts is not None and not kwargs:  # kwargs: PEFT's own routing needs its forward
        token_logprobs = _shared_prefix_pass(
            model, parts, prompts, completions, names, scale, pad_id
        )
    else:
        with routing:
            token_logprobs = _full_pass(model, prompts, completions, kwargs, scale, pad_id)
    return [token_logprobs[i, : c.shape[0]] for i, c in enumerate(completions)]


def _full_pass(
    model: Any,
    prompts: Sequence[torch.Tensor],
    completions: Sequence[torch.Tensor],
    kwargs: dict[str, Any],
    scale: torch.Tensor,
    pad_id: int,
) -> torch.Tensor:
    """``(B, T)`` log-probs from one forward pass over every row's prompt and completion."""
    device = scale.device
    ids, mask, positions, width = batch_layout(prompts, completions, pad_id)
    logits = model(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        position_ids=positions.to(device),
        logits_to_keep=width + 1,
        use_cache=False,
        **kwargs,
    ).logits[:, :-1]  # (B, T, V): position P - 1 + t predicts completion token t
    targets = ids[:, -width:].to(device)  # (B, T)
    return _target_logprobs(logits.float() / scale[:, None, None], targets)  # (B, T)


def _shared_prefix_pass(
    model: Any,
    parts: tuple[Any, torch.nn.Module],
    prompts: Sequence[torch.Tensor],
    completions: Sequence[torch.Tensor],
    adapters: list[str] | None,
    scale: torch.Tensor,
    pad_id: int,
) -> torch.Tensor:
    """``(B, T)`` log-probs with each distinct prompt run once (:mod:`~llm_marl.models.prefix`).

    Pass 1 runs the ``U`` distinct prompts; their cache is copied to the ``B`` rows (with
    gradients, so LoRA on the keys and values learns from the prompt); pass 2 runs the
    completions on that cache. The head then scores only real completion tokens.
    """
    decoder, head = parts
    device = scale.device
    groups = group_prompts(prompts, adapters)
    owner = groups.owner.to(device)  # (B,)
    prompt_ids, prompt_mask = left_pad(groups.prompts, pad_id)  # (U, P)
    prompt_ids, prompt_mask = prompt_ids.to(device), prompt_mask.to(device)
    routing, _ = per_row_adapters(model, groups.adapters)
    with routing:
        first = run_prompts(decoder, prompt_ids, prompt_mask)
    last = first.last_hidden_state[:, -1][owner]  # (B, H): predicts completion token 0
    ids, completion_mask = _right_pad(completions, pad_id)  # (B, T)
    ids, completion_mask = ids.to(device), completion_mask.to(device)
    width = ids.shape[1]
    hidden = last[:, None]  # (B, 1, H)
    if width > 1:
        cache = returned_cache(first)
        cache.reorder_cache(owner)  # (U, ...) -> (B, ...), an index_select: grads flow back
        mask = torch.cat([prompt_mask[owner], completion_mask[:, :-1]], dim=1)  # (B, P + T - 1)
        start = prompt_mask.sum(dim=1)[owner, None]  # (B, 1) real prompt tokens
        routing, _ = per_row_adapters(model, adapters)
        with routing:
            rest = decoder(
                input_ids=ids[:, :-1],
                attention_mask=mask,
                position_ids=start + torch.arange(width - 1, device=device)[None],
                use_cache=True,
                **{cache_argument(decoder): cache},
            ).last_hidden_state  # (B, T - 1, H): token t predicts token t + 1
        hidden = torch.cat([hidden, rest], dim=1)  # (B, T, H)
    real = completion_mask.bool()  # (B, T)
    token_scale = scale[:, None].expand_as(ids)[real]  # (N,)
    values = head_logprobs(head, hidden[real], ids[real], token_scale)  # (N,)
    out = torch.zeros(ids.shape, dtype=values.dtype, device=device)
    return out.masked_scatter(real, values)  # (B, T), 0 at padding


def head_logprobs(
    head: torch.nn.Module,
    hidden: torch.Tensor,
    targets: torch.Tensor,
    temperature: torch.Tensor,
    *,
    chunk_tokens: int = HEAD_CHUNK_TOKENS,
) -> torch.Tensor:
    """``log softmax(head(hidden) / temperature)[target]`` per token, ``(N,)`` float32.

    The vocabulary-wide logits exist for ``chunk_tokens`` tokens at a time and are never kept:
    the backward pass recomputes each chunk's logits and turns them into the gradient in place
    (a ``(N, V)`` float32 copy is 200 KB per token for a 49k vocabulary). Every chunk, forward
    and backward, works in the same two buffers (a fresh buffer of that size costs more in
    page faults on a CPU than the arithmetic done in it), and under autocast the head's
    weight is cast once for all chunks.
    """
    weight: torch.Tensor = head.weight  # type: ignore[assignment]
    bias: torch.Tensor | None = getattr(head, "bias", None)
    device_type = hidden.device.type
    if torch.is_autocast_enabled(device_type):
        dtype = torch.get_autocast_dtype(device_type)
        weight = weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
    hidden = hidden.to(weight.dtype)
    scratch = _Scratch(min(chunk_tokens, int(hidden.shape[0])), weight)
    out = []
    with torch.autocast(device_type, enabled=False):
        for start in range(0, int(hidden.shape[0]), chunk_tokens):
            part = slice(start, start + chunk_tokens)
            args = (hidden[part], weight, bias, targets[part], temperature[part], scratch)
            out.append(_HeadLogprobs.apply(*args))
    return torch.cat(out) if out else hidden.new_zeros(0, dtype=torch.float32)


class _Scratch:
    """The ``(n, V)`` buffers of :func:`head_logprobs`' chunks: the head's products (in the
    weight's dtype) and their float32 copy (the same buffer for a float32 weight)."""

    def __init__(self, rows: int, weight: torch.Tensor) -> None:
        shape = (rows, int(weight.shape[0]))
        self.scores = torch.empty(shape, dtype=weight.dtype, device=weight.device)
        is_float = weight.dtype == torch.float32
        self.logits = (
            self.scores if is_float else torch.empty_like(self.scores, dtype=torch.float32)
        )

    def scaled_logits(
        self,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        scale: torch.Tensor,
    ) -> torch.Tensor:
        """``(hidden @ weight.T + bias) / scale`` in float32, ``(n, V)``, in the buffers."""
        n = int(hidden.shape[0])
        scores, logits = self.scores[:n], self.logits[:n]
        if bias is None:
            torch.mm(hidden, weight.t(), out=scores)
        else:
            torch.addmm(bias, hidden, weight.t(), out=scores)
        if logits is not scores:
            logits.copy_(scores)
        return logits.div_(scale[:, None])

    def in_weight_dtype(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` (a view of the float32 buffer) in the weight's dtype."""
        n = int(values.shape[0])
        return values if self.logits is self.scores else self.scores[:n].copy_(values)


class _HeadLogprobs(torch.autograd.Function):
    """One chunk of :func:`head_logprobs`: forward keeps only the log-normalisers; backward
    recomputes the logits and makes ``softmax - onehot`` of them in place."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        targets: torch.Tensor,
        scale: torch.Tensor,
        scratch: _Scratch,
    ) -> torch.Tensor:
        logits = scratch.scaled_logits(hidden, weight, bias, scale)  # (n, V) float32
        picked = logits.gather(-1, targets[:, None])[:, 0]
        top = logits.amax(dim=-1, keepdim=True)  # (n, 1): logsumexp in place
        normalizer = logits.sub_(top).exp_().sum(dim=-1).log_().add_(top[:, 0])  # (n,)
        ctx.save_for_backward(hidden, weight, bias, targets, scale, normalizer)
        ctx.scratch = scratch
        return picked - normalizer

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        hidden, weight, bias, targets, scale, normalizer = ctx.saved_tensors
        scratch: _Scratch = ctx.scratch
        # d(picked - logsumexp)/d logits = onehot - softmax; logits = raw / scale.
        logits = scratch.scaled_logits(hidden, weight, bias, scale)
        factor = (grad / scale)[:, None]  # (n, 1)
        raw = logits.sub_(normalizer[:, None]).exp_().mul_(-factor)  # -softmax * factor
        raw.scatter_add_(-1, targets[:, None], factor)
        raw = scratch.in_weight_dtype(raw)  # (n, V): the gradient of the raw logits
        needs = ctx.needs_input_grad
        grad_hidden = raw @ weight if needs[0] else None
        grad_weight = raw.t() @ hidden if needs[1] else None
        grad_bias = raw.sum(dim=0) if bias is not None and needs[2] else None
        return grad_hidden, grad_weight, grad_bias, None, None, None


def _target_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``log_softmax(logits)`` at ``targets``, over the last dimension (vocabulary)."""
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def _right_pad(rows: Sequence[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack 1-D id tensors right-padded: ``(ids, mask)``, both ``(B, T)``."""
    width = max(int(r.shape[0]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : row.shape[0]] = row
        mask[i, : row.shape[0]] = 1
    return ids, mask
