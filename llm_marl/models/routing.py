"""Route every batch row through its own agent's LoRA adapter, all agents in one forward pass.

PEFT's mixed-adapter batches (``adapter_names=``) split each LoRA layer's input into one
sub-batch per adapter with fancy indexing, about a dozen small ops per layer and step; on a
CPU that costs a tenth of a decoding step. Here the adapters' ranks are stacked instead: for a
layer whose adapters k = 1..n have ``A_k (r_k, in)``, ``B_k (out, r_k)`` and scaling ``s_k``,

    A = [A_1; ...; A_n]   (sum r_k, in)        B = [s_1 B_1, ..., s_n B_n]   (out, sum r_k)

and a 0/1 row mask ``m`` keeps only the rank slots of the row's own adapter, so
``((x Aᵀ) * m) Bᵀ = s_k B_k A_k x`` exactly: three small ops per layer whatever the number of
agents. The adapters stay PEFT adapters (created, saved and loaded by PEFT); only the forward
pass is routed. Gradients reach each adapter through the concatenation. Dropout on the adapter
input is not applied (teams run in eval mode).

The routing lives in forward hooks installed for the duration of a ``with`` block: it is not
re-entrant (no nested routing or :func:`adapters_off` inside it), not thread-safe (one block per
model at a time), and refuses gradient checkpointing, which would re-run the forward pass after
the block has ended and so without the routing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch

__all__ = ["adapters_off", "lora_layers", "per_row_adapters", "routable", "routed_adapters"]


def lora_layers(model: Any) -> list[Any]:
    """Every PEFT LoRA layer of ``model`` (none for a plain model)."""
    from peft.tuners.lora.layer import LoraLayer

    return [m for m in model.modules() if isinstance(m, LoraLayer)]


def routable(model: Any) -> bool:
    """True when every LoRA layer of ``model`` is a plain (vanilla) LoRA linear layer."""
    from peft.tuners.lora.layer import Linear

    layers = lora_layers(model)
    return bool(layers) and all(
        type(layer) is Linear and not layer.lora_variant and not layer.merged for layer in layers
    )


@contextlib.contextmanager
def adapters_off(model: Any) -> Iterator[Any]:
    """Inside the block, every LoRA layer of ``model`` computes its base layer only.

    Unlike PEFT's ``disable_adapter()``, this leaves ``requires_grad`` alone: PEFT's version
    turns it off for every adapter and back on only for the active one, which would silently
    freeze every other agent of a team.
    """
    with _base_only(lora_layers(model)):
        yield model


@contextlib.contextmanager
def _base_only(layers: list[Any]) -> Iterator[None]:
    """Set PEFT's per-layer "adapters disabled" flag on ``layers``, restored afterwards."""
    before = [layer._disable_adapters for layer in layers]
    try:
        for layer in layers:
            layer._disable_adapters = True
        yield
    finally:
        for layer, flag in zip(layers, before, strict=True):
            layer._disable_adapters = flag


@contextlib.contextmanager
def routed_adapters(model: Any, row_adapters: Sequence[str]) -> Iterator[None]:
    """Inside the block, row i of every forward pass of ``model`` (a PEFT model) goes through
    adapter ``row_adapters[i]``; the batch size must be ``len(row_adapters)``."""
    if torch.is_grad_enabled() and any(  # sampling runs without grad: no scan there
        getattr(m, "gradient_checkpointing", False) is True for m in model.modules()
    ):
        raise ValueError(
            "per-row LoRA routing cannot run under gradient checkpointing (the recomputed "
            "forward pass would miss the routing); disable it with "
            "model.gradient_checkpointing_disable()"
        )
    names = sorted(set(row_adapters))
    rows = torch.tensor([names.index(a) for a in row_adapters])  # (B,) adapter of each row
    handles = []
    layers = lora_layers(model)
    with _base_only(layers):  # PEFT's own forward then computes the base layer only
        try:
            for layer in layers:
                handles.append(layer.register_forward_hook(_stacked_hook(layer, names, rows)))
            yield
        finally:
            for handle in handles:
                handle.remove()


def per_row_adapters(
    model: Any, row_adapters: Sequence[str] | None
) -> tuple[contextlib.AbstractContextManager[Any], dict[str, Any]]:
    """A context and forward kwargs that send row i through adapter ``row_adapters[i]``.

    Stacked-rank routing when the model allows it, else PEFT's own mixed-adapter batch
    (``adapter_names``); nothing at all without ``row_adapters``.
    """
    if row_adapters is None:
        return contextlib.nullcontext(), {}
    if routable(model):
        return routed_adapters(model, row_adapters), {}
    return contextlib.nullcontext(), {"adapter_names": list(row_adapters)}


def _stacked_hook(layer: Any, names: list[str], rows: torch.Tensor) -> Any:
    missing = [a for a in names if a not in layer.lora_A]
    if missing:
        raise KeyError(f"no LoRA adapter {missing} in layer {type(layer).__name__}")
    A = torch.cat([layer.lora_A[a].weight for a in names], dim=0)  # (R, in), R = sum of ranks
    B = torch.cat([layer.lora_B[a].weight * layer.scaling[a] for a in names], dim=1)  # (out, R)
    owner = torch.cat(
        [torch.full((layer.r[a],), k, dtype=torch.long) for k, a in enumerate(names)]
    )  # (R,) adapter of each rank slot
    mask = (rows[:, None] == owner[None, :]).to(A.dtype).to(A.device)  # (B, R)

    def hook(module: Any, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        x = args[0].to(A.dtype)  # (B, T, in)
        if x.shape[0] != mask.shape[0]:
            raise ValueError(
                f"routed batch has {x.shape[0]} rows but {mask.shape[0]} row adapters were given"
            )
        hidden = (x @ A.T) * mask[:, None, :]  # (B, T, R)
        return output + (hidden @ B.T).to(output.dtype)  # (B, T, out)

    return hook
