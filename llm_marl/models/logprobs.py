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

from llm_marl.models.routing import per_row_adapters

__all__ = ["batch_layout", "completion_logprobs", "left_pad"]


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
) -> list[torch.Tensor]:
    """Log-probability of each completion token given its prompt: one ``(T_i,)`` tensor each.

    ``temperature`` is one value or one per row. Gradients flow when called with grad
    enabled. ``adapter_names`` (one per row) routes each row through its own PEFT LoRA adapter
    in the same forward pass (:func:`~llm_marl.models.routing.per_row_adapters`). Rows are
    processed in chunks of ``batch_size`` (all at once when None).
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
    out: list[torch.Tensor] = []
    for start in range(0, len(prompts), step):
        rows = slice(start, start + step)
        chunk_completions = completions[rows]
        if max(int(c.shape[0]) for c in chunk_completions) == 0:
            out.extend(torch.zeros(0, device=device) for _ in chunk_completions)
            continue
        ids, mask, positions, width = batch_layout(prompts[rows], chunk_completions, pad_id)
        routing, kwargs = per_row_adapters(
            model, None if adapter_names is None else adapter_names[rows]
        )
        with routing:
            logits = model(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                position_ids=positions.to(device),
                logits_to_keep=width + 1,
                use_cache=False,
                **kwargs,
            ).logits[:, :-1]  # (B, T, V): position P - 1 + t predicts completion token t
        scale = torch.tensor(temperatures[rows], device=device)[:, None, None]  # (B, 1, 1)
        logits = logits.float() / scale
        targets = ids[:, -width:].to(device)  # (B, T)
        picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
        token_logprobs = picked - torch.logsumexp(logits, dim=-1)  # (B, T)
        out.extend(token_logprobs[i, : c.shape[0]] for i, c in enumerate(chunk_completions))
    return out
