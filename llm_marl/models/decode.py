"""A lean decode loop for Llama-family models: the ``fused`` sampler.

HF ``generate`` on a small model decodes far below what the machine's memory bandwidth
allows: every step runs about a dozen small kernels per layer, routes each LoRA layer
separately, grows the KV cache by concatenation (a copy of the whole cache per step) and
samples through ``torch.multinomial``. This loop computes the same model with:

- the query/key/value projections of each layer fused into one matrix, and every agent's
  LoRA adapters on a projection stacked into one rank-stacked pair (as in
  :mod:`~llm_marl.models.routing`), so one layer is five base products and at most five LoRA
  pairs whatever the number of agents;
- on a CPU, the base matrices reordered once into oneDNN's blocked layout (kept across calls
  while the weights are unchanged), which makes the small-batch products of decoding 1.3x
  (bfloat16) to 3x (float32) faster than ``F.linear`` on plain matrices;
- a KV cache allocated once for the prompt plus ``max_new_tokens``, written in place, and
  attention in float32 on a CPU (its bfloat16 kernel measured 4x slower for one query);
- each distinct ``(adapter, prompt)`` prefilled once and its cache copied to its G rows;
- sampling by inverse CDF on one uniform draw per row (the same distribution as HF's
  temperature / top-k / top-p warpers), searched in two levels (blocks, then tokens) instead
  of a scan over the whole vocabulary, the log-probs recorded from the raw logits;
- optionally bfloat16 weights (``dtype``), which halves the bytes read per step; on a CPU with
  AMX or AVX512-BF16 that is the largest gain. Recorded log-probs then come from the bfloat16
  model, a little off the float32 trainer's
  (:func:`~llm_marl.models.backends.logprob_mismatch` measures it).

Converted copies of the weights (bfloat16, fused, oneDNN's layout) are reused while their
source tensors are unchanged: the same tensors with the same in-place version counter, which
every optimiser step, in-place op and ``load_state_dict`` advances, so a trainer's updates are
always used. A write through ``tensor.data`` does not advance it: call
:func:`forget_converted_weights` after one.
Models that are not plain Llama decoders (biases, query/key norms, sliding windows, other
activations) are refused by :func:`unsupported_reason`; use the hf sampler for them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from llm_marl.models.logprobs import left_pad
from llm_marl.models.prefix import group_prompts
from llm_marl.models.routing import lora_layers, routable

__all__ = [
    "DECODE_DTYPES",
    "FusedDecoding",
    "forget_converted_weights",
    "fused_generate",
    "resolve_dtype",
    "unsupported_reason",
]

#: The weight dtypes the fused sampler accepts; ``auto`` is bfloat16 where the hardware has
#: fast bfloat16 products (a GPU that supports it, a CPU with AMX or AVX512-BF16), else float32.
DECODE_DTYPES = ("float32", "bfloat16", "auto")


@dataclass(frozen=True)
class FusedDecoding:
    """Sample with :func:`fused_generate` instead of HF ``generate``."""

    dtype: str = "float32"
    """Weights and activations of the decode loop: one of :data:`DECODE_DTYPES`."""

    def __post_init__(self) -> None:
        if self.dtype not in DECODE_DTYPES:
            raise ValueError(f"dtype must be one of {list(DECODE_DTYPES)}, got {self.dtype!r}")


def resolve_dtype(name: str, device: torch.device | None = None) -> torch.dtype:
    """The torch dtype of ``name`` (one of :data:`DECODE_DTYPES`) on ``device``."""
    if name == "float32":
        return torch.float32
    if name == "bfloat16":
        return torch.bfloat16
    if name != "auto":
        raise ValueError(f"dtype must be one of {list(DECODE_DTYPES)}, got {name!r}")
    if device is not None and device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    cpu_bf16 = torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
    return torch.bfloat16 if cpu_bf16 else torch.float32


def unsupported_reason(model: Any) -> str | None:
    """Why the fused sampler cannot run ``model`` (a causal LM, PEFT-wrapped or not); None
    when it can."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(base, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type != "llama":
        return f"it runs Llama-family models only, not model_type {model_type!r}"
    activation = getattr(config, "hidden_act", "silu")
    if activation != "silu":
        return f"it runs the SiLU MLP only, not hidden_act {activation!r}"
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        return "it runs projections without biases only"
    if type(base.get_input_embeddings()) is not torch.nn.Embedding:
        return "a LoRA adapter on the input embeddings is not supported"
    if type(base.get_output_embeddings()) is not torch.nn.Linear:
        return "a LoRA adapter on the output head is not supported"
    if lora_layers(model) and not routable(model):
        return "it runs plain LoRA adapters only (no DoRA or other variants, none merged)"
    return None


class _Projection:
    """Several linear layers of one input fused into one product, plus their LoRA adapters
    stacked by rank; :meth:`route` picks each row's adapter."""

    def __init__(self, layers: Sequence[Any], dtype: torch.dtype, store: _WeightStore) -> None:
        from peft.tuners.lora.layer import LoraLayer

        lora_a, lora_b, owners = [], [], []
        offset = 0
        total = sum(_base(layer).weight.shape[0] for layer in layers)
        for layer in layers:
            rows = _base(layer).weight.shape[0]
            if isinstance(layer, LoraLayer) and not layer.disable_adapters:
                lora: Any = layer  # PEFT's LoraLayer: its adapters are module dicts
                for name in lora.lora_A:
                    a = lora.lora_A[name].weight.detach()  # (r, in)
                    b = a.new_zeros(total, a.shape[0])
                    b[offset : offset + rows] = (
                        lora.lora_B[name].weight.detach() * lora.scaling[name]
                    )
                    lora_a.append(a)
                    lora_b.append(b)
                    owners.append((name, a.shape[0]))
            offset += rows
        self.base = store.fused([_base(layer).weight for layer in layers], dtype)
        self.a = torch.cat(lora_a).to(dtype) if lora_a else None  # (R, in)
        self.b = torch.cat(lora_b, dim=1).to(dtype) if lora_b else None  # (out, R)
        self.slots = [name for name, rank in owners for _ in range(rank)]  # adapter of each slot
        self.active = {a for layer in layers for a in getattr(layer, "active_adapters", ())}
        self.mask: torch.Tensor | None = None

    def route(self, rows: Sequence[str] | None) -> None:
        """Row i goes through adapter ``rows[i]``; None: every row through the layer's active
        adapters, as PEFT's own forward. Call it before the first product."""
        if self.a is None:
            return
        if rows is None:
            mask = [[float(slot in self.active) for slot in self.slots]]
        else:
            unknown = set(rows) - set(self.slots)
            if unknown:
                raise KeyError(f"no LoRA adapter {sorted(unknown)} in this layer")
            mask = [[float(slot == row) for slot in self.slots] for row in rows]
        self.mask = torch.tensor(mask, dtype=self.a.dtype, device=self.a.device)[:, None]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.a is not None and self.b is not None and self.mask is not None:
            hidden = F.linear(x, self.a) * self.mask  # (B, 1, R): each row keeps its ranks
            out = out + F.linear(hidden, self.b)
        return out


class _Matrix:
    """A weight matrix ``(out, in)`` ready for products ``x @ W.T``: on a CPU with oneDNN,
    reordered once into oneDNN's blocked layout, which makes the small-batch products of
    decoding about 1.3x (bfloat16) to 3x (float32) faster than ``F.linear`` on the plain
    matrix; elsewhere the plain matrix."""

    def __init__(self, weight: torch.Tensor) -> None:
        self.packed = _packable(weight)
        self.weight = torch.ops.mkldnn._reorder_linear_weight(weight, 8) if self.packed else weight

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.packed:
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, None, "none", [], "")
        return F.linear(x, self.weight)


def _packable(weight: torch.Tensor) -> bool:
    """Whether oneDNN can take ``weight`` in its blocked layout for products."""
    if weight.device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    if weight.dtype == torch.bfloat16:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return weight.dtype == torch.float32


class _WeightStore:
    """The fused / converted copies of a model's weights, kept across calls for as long as
    the weights they came from are unchanged (same tensors, same in-place version): a LoRA
    team's frozen base is converted once, a fully trained model after every update."""

    def __init__(self) -> None:
        # key -> (the source tensors, kept so that their ids cannot be reused, the copy)
        self.entries: dict[tuple[Any, ...], tuple[list[torch.Tensor], _Matrix]] = {}
        self.used: set[tuple[Any, ...]] = set()

    def fused(self, parts: Sequence[torch.Tensor], dtype: torch.dtype) -> _Matrix:
        """``parts`` stacked along their first dimension, in ``dtype``, ready for products."""
        key = (dtype, *((id(p), p._version) for p in parts))
        self.used.add(key)
        if key not in self.entries:
            with torch.no_grad():
                if len(parts) == 1 and parts[0].dtype == dtype:
                    copy = parts[0].detach()  # no conversion (oneDNN's layout is a copy)
                else:
                    copy = torch.cat([p.detach() for p in parts]).to(dtype)
            self.entries[key] = (list(parts), _Matrix(copy))
        return self.entries[key][1]

    def drop_unused(self, dtype: torch.dtype) -> None:
        """Forget the ``dtype`` copies this call did not use (stale versions, replaced
        tensors) and the copies of other dtypes whose sources have changed since; the rest
        stay, so that calls alternating between dtypes convert nothing twice."""

        def kept(key: tuple[Any, ...], sources: list[torch.Tensor]) -> bool:
            if key in self.used:
                return True
            current = all(
                version == p._version for (_, version), p in zip(key[1:], sources, strict=True)
            )
            return key[0] != dtype and current

        self.entries = {k: v for k, v in self.entries.items() if kept(k, v[0])}
        self.used = set()


def forget_converted_weights(model: Any) -> None:
    """Drop the fused sampler's converted copies of ``model``'s weights, so that its next call
    converts them again: needed only after writes that bypass autograd's version counter
    (``param.data.copy_(...)``, ``param.data = ...``)."""
    _store(model).entries.clear()


def _store(model: Any) -> _WeightStore:
    store = getattr(model, "_llm_marl_fused_weights", None)
    if not isinstance(store, _WeightStore):
        store = _WeightStore()
        object.__setattr__(model, "_llm_marl_fused_weights", store)
    return store


def _base(layer: Any) -> Any:
    return layer.get_base_layer() if hasattr(layer, "get_base_layer") else layer


class _Layer:
    """One decoder layer's weights, fused."""

    def __init__(self, module: Any, dtype: torch.dtype, store: _WeightStore) -> None:
        attention, mlp = module.self_attn, module.mlp
        self.qkv = _Projection([attention.q_proj, attention.k_proj, attention.v_proj], dtype, store)
        self.o = _Projection([attention.o_proj], dtype, store)
        # Not fused: two (1536, 576) bfloat16 products measured faster than one (3072, 576).
        self.gate = _Projection([mlp.gate_proj], dtype, store)
        self.up = _Projection([mlp.up_proj], dtype, store)
        self.down = _Projection([mlp.down_proj], dtype, store)
        self.norm_1 = module.input_layernorm.weight.detach().to(dtype)
        self.norm_2 = module.post_attention_layernorm.weight.detach().to(dtype)

    def projections(self) -> list[_Projection]:
        return [self.qkv, self.o, self.gate, self.up, self.down]


class _Model:
    """A Llama model's weights read for decoding, in ``dtype``."""

    def __init__(self, model: Any, dtype: torch.dtype) -> None:
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        config = base.config
        decoder = base.get_decoder()
        self.dtype = dtype
        self.device = next(base.parameters()).device
        # The KV cache and attention: float32 on a CPU even for bfloat16 weights, where the
        # bfloat16 attention kernel measured 4x slower than the float32 one (one query row).
        self.attention_dtype = torch.float32 if self.device.type == "cpu" else dtype
        self.heads = config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or self.heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.eps = float(config.rms_norm_eps)
        self.embed = decoder.embed_tokens.weight.detach()
        self.embed_scale = getattr(decoder.embed_tokens, "embed_scale", None)
        self.rotary = decoder.rotary_emb
        store = _store(model)
        self.layers = [_Layer(layer, dtype, store) for layer in decoder.layers]
        self.norm = decoder.norm.weight.detach().to(dtype)
        self.head = store.fused([base.get_output_embeddings().weight], dtype)  # (V, D)
        store.drop_unused(dtype)

    def route(self, rows: Sequence[str] | None) -> None:
        for layer in self.layers:
            for projection in layer.projections():
                projection.route(rows)

    def rms_norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """LlamaRMSNorm in one kernel (the same values up to rounding)."""
        return F.rms_norm(x, (x.shape[-1],), weight, self.eps)

    def rope(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin ``(B, T, 1, head_dim)`` of ``positions (B, T)``."""
        probe = torch.empty(0, dtype=self.dtype, device=self.device)
        cos, sin = self.rotary(probe, positions)
        return cos[:, :, None], sin[:, :, None]

    def forward(
        self,
        ids: torch.Tensor,
        positions: torch.Tensor,
        cache: _Cache,
        start: int,
        valid: torch.Tensor,
    ) -> torch.Tensor:
        """Run ``ids (B, T)`` at cache columns ``start..start+T``; the float32 logits of each
        row's last token ``(B, V)``. ``valid (B, start+T)``: the columns a row may attend to."""
        B, T = ids.shape
        end = start + T
        h = self.embed[ids].to(self.dtype)
        if self.embed_scale is not None:
            h = h * self.embed_scale.to(self.dtype)
        cos, sin = self.rope(positions)
        causal = torch.ones(T, end, dtype=torch.bool, device=self.device).tril(start)
        # A left-padding query would attend to nothing (a NaN row): every token sees itself.
        itself = torch.zeros(T, end, dtype=torch.bool, device=self.device)
        itself[:, start:] = torch.eye(T, dtype=torch.bool, device=self.device)
        mask = (valid[:, None, None, :] & causal) | itself  # (B, 1, T, end)
        q_width, kv_width = self.heads * self.head_dim, self.kv_heads * self.head_dim
        for index, layer in enumerate(self.layers):
            x = self.rms_norm(h, layer.norm_1)
            qk, v = layer.qkv(x).split([q_width + kv_width, kv_width], dim=-1)
            qk = qk.view(B, T, self.heads + self.kv_heads, self.head_dim)
            qk = qk * cos + _rotate_half(qk) * sin  # queries and keys rotated together
            q = qk[:, :, : self.heads].transpose(1, 2)  # (B, heads, T, head_dim)
            k = qk[:, :, self.heads :].transpose(1, 2)
            v = v.view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)
            keys, values = cache.write(index, start, k, v)
            attended = F.scaled_dot_product_attention(
                q.to(self.attention_dtype),
                keys,
                values,
                attn_mask=mask,
                scale=1 / math.sqrt(self.head_dim),
                enable_gqa=True,
            )
            h = h + layer.o(attended.transpose(1, 2).reshape(B, T, q_width).to(self.dtype))
            x = self.rms_norm(h, layer.norm_2)
            h = h + layer.down(F.silu(layer.gate(x)) * layer.up(x))
        last = self.rms_norm(h[:, -1], self.norm)
        return self.head(last).float()


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class _Cache:
    """Keys and values of every layer, ``(B, kv_heads, width, head_dim)`` each, written in place."""

    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor]) -> None:
        self.keys, self.values = keys, values

    @classmethod
    def empty(cls, model: _Model, rows: int, width: int) -> _Cache:
        """Room for ``width`` columns of ``rows`` rows in every layer of ``model``."""
        shape = (rows, model.kv_heads, width, model.head_dim)
        dtype, device = model.attention_dtype, model.device
        keys = [torch.empty(shape, dtype=dtype, device=device) for _ in model.layers]
        return cls(keys, [torch.empty_like(k) for k in keys])

    def write(
        self, layer: int, start: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        end = start + k.shape[2]
        self.keys[layer][:, :, start:end] = k
        self.values[layer][:, :, start:end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def expand(self, owner: torch.Tensor, width: int, columns: int) -> _Cache:
        """A cache of ``len(owner)`` rows, row i a copy of this cache's row ``owner[i]`` over
        its first ``columns`` columns, with room for ``width`` columns."""

        def grown(tensor: torch.Tensor) -> torch.Tensor:
            rows = tensor.new_empty((owner.shape[0], tensor.shape[1], width, tensor.shape[3]))
            rows[:, :, :columns] = tensor[:, :, :columns].index_select(0, owner)
            return rows

        return _Cache([grown(k) for k in self.keys], [grown(v) for v in self.values])


def fused_generate(
    model: Any,
    prompts: list[torch.Tensor],
    adapters: list[str] | None,
    *,
    max_new_tokens: int,
    temperature: float,
    top_k: int,
    top_p: float,
    logprob_temperature: float,
    pad_id: int,
    stops: set[int],
    stopped: Any = None,
    dtype: torch.dtype = torch.float32,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Sample ``max_new_tokens`` after each of ``prompts``, row i through LoRA adapter
    ``adapters[i]`` (None: the model as it is); greedy when ``temperature`` is 0.

    Returns, per row, the new tokens (``pad_id`` after the row ended) and the log-prob of each
    at ``logprob_temperature`` before truncation, as HF sampling does. ``stops``: EOS ids;
    ``stopped(new_tokens (B, t)) -> (B,) bool``, when given, ends rows on stop strings.
    """
    with torch.no_grad():
        weights = _Model(model, dtype)
        groups = group_prompts(prompts, adapters)
        distinct, distinct_mask = left_pad(groups.prompts, pad_id)  # (U, P)
        width = distinct.shape[1]
        device = weights.device
        distinct, distinct_mask = distinct.to(device), distinct_mask.to(device).bool()
        positions = (distinct_mask.long().cumsum(dim=1) - 1).clamp(min=0)
        weights.route(groups.adapters)
        prefill = _Cache.empty(weights, distinct.shape[0], width)
        logits_u = weights.forward(distinct, positions, prefill, 0, distinct_mask)
        owner = groups.owner.to(device)
        cache = prefill.expand(owner, width + max_new_tokens, width)
        del prefill
        weights.route(adapters)
        logits = logits_u.index_select(0, owner)  # (B, V)
        valid = torch.ones(owner.shape[0], width + max_new_tokens, dtype=torch.bool, device=device)
        valid[:, :width] = distinct_mask.index_select(0, owner)
        next_position = positions[:, -1].index_select(0, owner) + 1  # (B,)
        rows = owner.shape[0]
        tokens = torch.full((rows, max_new_tokens), pad_id, dtype=torch.long, device=device)
        logprobs = torch.zeros(rows, max_new_tokens, device=device)
        done = torch.zeros(rows, dtype=torch.bool, device=device)
        stop_ids = torch.tensor(sorted(stops), device=device)
        steps = 0
        for step in range(max_new_tokens):
            picked = _pick(logits, temperature, top_k, top_p)
            picked = torch.where(done, torch.full_like(picked, pad_id), picked)
            scored = torch.log_softmax(logits / logprob_temperature, dim=-1)
            tokens[:, step] = picked
            logprobs[:, step] = scored.gather(1, picked[:, None])[:, 0]
            steps = step + 1
            done = done | torch.isin(picked, stop_ids)
            if stopped is not None:
                done = done | stopped(tokens[:, :steps]).to(device)
            if bool(done.all()) or steps == max_new_tokens:
                break
            logits = weights.forward(
                picked[:, None],
                next_position[:, None],
                cache,
                width + step,
                valid[:, : width + steps],
            )
            next_position = next_position + 1
    return list(zip(tokens[:, :steps].cpu(), logprobs[:, :steps].cpu(), strict=True))


def _pick(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """One token per row: the argmax (temperature 0) or a sample from the temperature /
    top-k / top-p distribution, by inverse CDF on one uniform draw per row."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    scores = logits / temperature
    if top_k:
        kth = torch.topk(scores, min(top_k, scores.shape[-1])).values[:, -1:]
        scores = scores.masked_fill(scores < kth, -math.inf)
    if top_p < 1:
        ordered, order = torch.sort(scores, descending=False)
        cumulative = ordered.softmax(dim=-1).cumsum(dim=-1)
        remove = cumulative <= (1 - top_p)
        remove[:, -1] = False  # keep at least the most likely token
        scores = scores.masked_fill(remove.scatter(1, order, remove), -math.inf)
    probs = scores.softmax(dim=-1)
    picked = _inverse_cdf(probs, torch.rand(probs.shape[0], 1, device=probs.device))
    # Rounding can land a draw on a zero-probability token at the end: step back to the last
    # token with mass.
    zero = probs.gather(1, picked[:, None])[:, 0] == 0
    if bool(zero.any()):
        last = probs.shape[-1] - 1 - (probs.flip(-1) > 0).int().argmax(dim=-1)
        picked = torch.where(zero, last, picked)
    return picked


#: Tokens per block of :func:`_inverse_cdf`'s two-level search.
_BLOCK = 256


def _inverse_cdf(probs: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """The token of each row ``probs (B, V)`` where its CDF first exceeds ``uniform (B, 1)``
    times its total mass. Two levels, so that no scan runs over the whole vocabulary (a
    49k-long cumsum costs about as much as the rest of a step's sampling): block sums, the
    block by a cumsum over them, the token by a cumsum inside that block."""
    rows, vocab = probs.shape
    padded = F.pad(probs, (0, -vocab % _BLOCK)) if vocab % _BLOCK else probs
    blocks = padded.view(rows, -1, _BLOCK)
    block_cdf = blocks.sum(dim=-1).cumsum(dim=-1)  # (B, blocks)
    draw = uniform * block_cdf[:, -1:]
    block = torch.searchsorted(block_cdf, draw, right=True).clamp(max=block_cdf.shape[1] - 1)
    before = torch.where(
        block > 0, block_cdf.gather(1, (block - 1).clamp(min=0)), torch.zeros_like(draw)
    )
    inside = blocks[torch.arange(rows, device=probs.device), block[:, 0]].cumsum(dim=-1)
    offset = torch.searchsorted(inside, draw - before, right=True).clamp(max=_BLOCK - 1)
    return (block[:, 0] * _BLOCK + offset[:, 0]).clamp(max=vocab - 1)
