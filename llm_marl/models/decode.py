"""A lean decode loop for Llama-family models: the ``fused`` sampler.

HF ``generate`` on a small model decodes far below what the machine's memory bandwidth
allows: every step runs about a dozen small kernels per layer, routes each LoRA layer
separately, grows the KV cache by concatenation (a copy of the whole cache per step) and
samples through ``torch.multinomial``. This loop computes the same model with:

- the query/key/value projections of each layer fused into one matrix, every agent's LoRA
  adapters on a projection stacked into one rank-stacked pair (as in
  :mod:`~llm_marl.models.routing`), and the stacked LoRA ``A`` appended to the base matrix as
  extra output columns, so one layer is five products plus at most five small ``B`` products
  whatever the number of agents;
- each RMSNorm's weight folded into the matrices that read its output (the norm itself is
  then one reduction and one division);
- on a CPU, the matrices reordered once into oneDNN's blocked layout (kept across calls while
  the weights are unchanged), which makes the small-batch products of decoding 1.3x
  (bfloat16) to 3x (float32) faster than ``F.linear`` on plain matrices, with the residual
  adds and the SiLU gate run as oneDNN post-ops of the products;
- a KV cache allocated once for the prompt plus ``max_new_tokens``, written in place, and
  one-query attention as two batched products in float32 on a CPU (the bfloat16 kernel and
  SDPA both measured slower for one query);
- each distinct ``(adapter, prompt)`` prefilled once, long prompts on a CPU one at a time
  over their own tokens (no padding computed); its cache copied to its G rows, or, for long
  prompts on a CPU, read once by all G rows (:class:`_SharedCache`), or used as it is when
  every row is its own prompt (G = 1);
- sampling by inverse CDF on one uniform draw per row (the same distribution as HF's
  temperature / top-k / top-p warpers), searched in two levels (blocks, then tokens) instead
  of a scan over the whole vocabulary; top-p finds the nucleus among the largest masses,
  without a sort of the whole vocabulary; the log-probs recorded from the raw logits; one logits
  buffer reused across steps;
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
from typing import Any, Literal

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
    stacked by rank; :meth:`route` picks each row's adapter.

    The adapters' down-projections ``A`` ride in the base product as extra output columns
    (one product instead of two); ``columns`` scales the input features of every matrix (a
    preceding RMSNorm's weight folded in), times ``factor``."""

    def __init__(
        self,
        layers: Sequence[Any],
        dtype: torch.dtype,
        store: _WeightStore,
        columns: torch.Tensor | None = None,
        factor: float = 1.0,
    ) -> None:
        from peft.tuners.lora.layer import LoraLayer

        lora_a, lora_b, owners = [], [], []
        offset = 0
        self.width = sum(_base(layer).weight.shape[0] for layer in layers)
        for layer in layers:
            rows = _base(layer).weight.shape[0]
            if isinstance(layer, LoraLayer) and not layer.disable_adapters:
                lora: Any = layer  # PEFT's LoraLayer: its adapters are module dicts
                for name in lora.lora_A:
                    a = lora.lora_A[name].weight  # (r, in)
                    b = a.new_zeros(self.width, a.shape[0])
                    b[offset : offset + rows] = (
                        lora.lora_B[name].weight.detach() * lora.scaling[name]
                    )
                    lora_a.append(a)
                    lora_b.append(b)
                    owners.append((name, a.shape[0]))
            offset += rows
        weights = [_base(layer).weight for layer in layers]
        self.base = store.fused(weights + lora_a, dtype, columns, factor)  # (out + R, in)
        # The rank-R products of one token per row are tiny: float32 on a CPU (MKL's small
        # products measured 2x faster than bfloat16 ones, packed or not); those of a prompt
        # (many tokens per row) in the weights' dtype, ready for products (4x faster there).
        on_cpu = _base(layers[0]).weight.device.type == "cpu"
        self.lora_dtype = torch.float32 if on_cpu else dtype
        self.b = torch.cat(lora_b, dim=1).to(self.lora_dtype) if lora_b else None  # (out, R)
        self.b_prompt = _Matrix(self.b.to(dtype)) if self.b is not None else None
        self.slots = [name for name, rank in owners for _ in range(rank)]  # adapter of each slot
        self.active = {a for layer in layers for a in getattr(layer, "active_adapters", ())}
        self.mask: torch.Tensor | None = None

    def route(self, rows: Sequence[str] | None) -> None:
        """Row i goes through adapter ``rows[i]``; None: every row through the layer's active
        adapters, as PEFT's own forward. Call it before the first product."""
        if self.b is None:
            return
        if rows is None:
            mask = [[float(slot in self.active) for slot in self.slots]]
        else:
            unknown = set(rows) - set(self.slots)
            if unknown:
                raise KeyError(f"no LoRA adapter {sorted(unknown)} in this layer")
            mask = [[float(slot == row) for slot in self.slots] for row in rows]
        self.mask = torch.tensor(mask, dtype=self.b.dtype, device=self.b.device)[:, None]

    @property
    def plain(self) -> bool:
        """Whether this is a base product only (no LoRA adapter)."""
        return self.b is None

    def __call__(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """The products of ``x (B, T, in)``, plus ``residual`` when given."""
        if self.b is None or self.b_prompt is None:
            return self.base(x) if residual is None else self.base.combine(x, residual, "add")
        out = self.base(x)
        result = out[..., : self.width]
        if residual is not None:
            result = residual + result
        if self.mask is None:
            return result
        # Each row keeps the ranks of its own adapter: (B, T, R).
        if x.shape[1] == 1:
            return result.add_(F.linear(out[..., self.width :] * self.mask, self.b))
        hidden = out[..., self.width :] * self.mask.to(out.dtype)
        return self.b_prompt.combine(hidden, result.contiguous(), "add")


class _Matrix:
    """A weight matrix ``(out, in)`` ready for products ``x @ W.T``: on a CPU with oneDNN,
    reordered once into oneDNN's blocked layout, which makes the small-batch products of
    decoding about 1.3x (bfloat16) to 3x (float32) faster than ``F.linear`` on the plain
    matrix; elsewhere the plain matrix."""

    def __init__(self, weight: torch.Tensor) -> None:
        self.packed = _packable(weight)
        self.weight = torch.ops.mkldnn._reorder_linear_weight(weight, 8) if self.packed else weight

    def __call__(self, x: torch.Tensor, silu: bool = False) -> torch.Tensor:
        """``x @ W.T``; with ``silu``, its SiLU (fused into the product where oneDNN can)."""
        if self.packed:
            post = "swish" if silu else "none"
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, None, post, [], "")
        out = F.linear(x, self.weight)
        return F.silu(out) if silu else out

    def combine(self, x: torch.Tensor, other: torch.Tensor, op: Literal["add", "mul"]) -> Any:
        """``other + x @ W.T`` or ``other * x @ W.T``, fused into the product where oneDNN
        can."""
        if self.packed and other.is_contiguous() and other.dtype == self.weight.dtype:
            return torch.ops.mkldnn._linear_pointwise.binary(x, other, self.weight, None, op)
        return other + self(x) if op == "add" else other * self(x)


def _packable(weight: torch.Tensor) -> bool:
    """Whether oneDNN can take ``weight`` in its blocked layout for products."""
    if weight.device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    if weight.dtype == torch.bfloat16:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return weight.dtype == torch.float32


#: A converted copy's key: its dtype, the ``(id, version)`` of each source tensor, its factor.
_Key = tuple[torch.dtype, tuple[tuple[int, int], ...], float]


class _WeightStore:
    """The fused / converted copies of a model's weights, kept across calls for as long as
    the weights they came from are unchanged (same tensors, same in-place version): a LoRA
    team's frozen base is converted once, a fully trained model after every update."""

    def __init__(self) -> None:
        # key -> (the source tensors, kept so that their ids cannot be reused, the copy)
        self.entries: dict[_Key, tuple[list[torch.Tensor], _Matrix]] = {}
        self.used: set[_Key] = set()

    def fused(
        self,
        parts: Sequence[torch.Tensor],
        dtype: torch.dtype,
        columns: torch.Tensor | None = None,
        factor: float = 1.0,
    ) -> _Matrix:
        """``parts`` stacked along their first dimension, each input feature (column) scaled
        by ``columns * factor`` when ``columns`` is given, in ``dtype``, ready for products."""
        sources = [*parts] if columns is None else [*parts, columns]
        key = (dtype, tuple((id(p), p._version) for p in sources), factor)
        self.used.add(key)
        if key not in self.entries:
            with torch.no_grad():
                if len(parts) == 1 and parts[0].dtype == dtype and columns is None:
                    copy = parts[0].detach()  # no conversion (oneDNN's layout is a copy)
                else:
                    copy = torch.cat([p.detach() for p in parts])
                    if columns is not None:
                        copy = copy.float() * (columns.detach().float() * factor)
                    copy = copy.to(dtype)
            self.entries[key] = (sources, _Matrix(copy))
        return self.entries[key][1]

    def drop_unused(self, dtype: torch.dtype) -> None:
        """Forget the ``dtype`` copies this call did not use (stale versions, replaced
        tensors) and the copies of other dtypes whose sources have changed since; the rest
        stay, so that calls alternating between dtypes convert nothing twice."""

        def kept(key: _Key, sources: list[torch.Tensor]) -> bool:
            if key in self.used:
                return True
            current = all(
                version == p._version for (_, version), p in zip(key[1], sources, strict=True)
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
    """One decoder layer's weights, fused, with its two RMSNorm weights folded into the
    products that follow them."""

    def __init__(self, module: Any, dtype: torch.dtype, store: _WeightStore, factor: float):
        attention, mlp = module.self_attn, module.mlp
        norm_1, norm_2 = module.input_layernorm.weight, module.post_attention_layernorm.weight
        self.qkv = _Projection(
            [attention.q_proj, attention.k_proj, attention.v_proj], dtype, store, norm_1, factor
        )
        self.o = _Projection([attention.o_proj], dtype, store)
        self.gate = _Projection([mlp.gate_proj], dtype, store, norm_2, factor)
        self.up = _Projection([mlp.up_proj], dtype, store, norm_2, factor)
        self.down = _Projection([mlp.down_proj], dtype, store)

    def projections(self) -> list[_Projection]:
        return [self.qkv, self.o, self.gate, self.up, self.down]

    def gated(self, x: torch.Tensor) -> torch.Tensor:
        """The MLP's ``silu(gate(x)) * up(x)``: for a prompt (many tokens per row) with the
        SiLU and the product fused into the gate and up products where they have no LoRA
        adapter (12% faster there; for one token per row, slower)."""
        if x.shape[1] > 1 and self.gate.plain and self.up.plain:
            return self.up.base.combine(x, self.gate.base(x, silu=True), "mul")
        return F.silu(self.gate(x)) * self.up(x)


class _Model:
    """A Llama model's weights read for decoding, in ``dtype``."""

    def __init__(self, model: Any, dtype: torch.dtype) -> None:
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        config = base.config
        decoder = base.get_decoder()
        self.dtype = dtype
        self.device = next(base.parameters()).device
        # The KV cache and attention: float32 on a CPU even for bfloat16 weights, where the
        # bfloat16 attention kernels measured 2x to 4x slower than the float32 ones.
        self.attention_dtype = torch.float32 if self.device.type == "cpu" else dtype
        self.heads = config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or self.heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        width = config.hidden_size
        # RMSNorm(x) * g = x / sqrt(mean(x^2) + eps) * g
        #                = x / hypot(|x|, sqrt(width * eps)) * (g * sqrt(width)):
        # g * sqrt(width) is folded into the next product's columns, the rest is three kernels.
        self.norm_floor = torch.tensor(
            math.sqrt(width * float(config.rms_norm_eps)), dtype=dtype, device=self.device
        )
        factor = math.sqrt(width)
        self.embed = decoder.embed_tokens.weight.detach()
        self.embed_scale = getattr(decoder.embed_tokens, "embed_scale", None)
        self.rotary = decoder.rotary_emb
        store = _store(model)
        self.layers = [_Layer(layer, dtype, store, factor) for layer in decoder.layers]
        head = base.get_output_embeddings().weight  # (V, D)
        self.head = store.fused([head], dtype, decoder.norm.weight, factor)
        store.drop_unused(dtype)

    def route(self, rows: Sequence[str] | None) -> None:
        for layer in self.layers:
            for projection in layer.projections():
                projection.route(rows)

    def normalized(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` over its RMS, up to the norm weight and a factor folded into the next
        product: LlamaRMSNorm's values up to rounding."""
        return x / torch.hypot(torch.linalg.vector_norm(x, dim=-1, keepdim=True), self.norm_floor)

    def rope(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin ``(B, T, 1, head_dim)`` of ``positions (B, T)``."""
        probe = torch.empty(0, dtype=self.dtype, device=self.device)
        cos, sin = self.rotary(probe, positions)
        return cos[:, :, None], sin[:, :, None]

    def forward(
        self,
        ids: torch.Tensor,
        positions: torch.Tensor,
        cache: _Cache | _SharedCache,
        start: int,
        valid: torch.Tensor,
        logits: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run ``ids (B, T)`` at cache columns ``start..start+T``; the float32 logits of each
        row's last token ``(B, V)``, written into ``logits`` when given (a buffer reused
        across steps: a fresh one of this size measured slow to allocate, page faults and
        all). ``valid (B, start+T)``: the columns a row may attend to."""
        B, T = ids.shape
        h = self.embed[ids].to(self.dtype)
        if self.embed_scale is not None:
            h = h * self.embed_scale.to(self.dtype)
        cos, sin = self.rope(positions)
        attend = self._attention(cache, valid, T, start)
        q_width, kv_width = self.heads * self.head_dim, self.kv_heads * self.head_dim
        for index, layer in enumerate(self.layers):
            qk, v = layer.qkv(self.normalized(h)).split([q_width + kv_width, kv_width], dim=-1)
            qk = qk.view(B, T, self.heads + self.kv_heads, self.head_dim)
            qk = qk * cos + _rotate_half(qk) * sin  # queries and keys rotated together
            k = qk[:, :, self.heads :].transpose(1, 2)  # (B, kv_heads, T, head_dim)
            v = v.view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)
            attended = attend(index, qk[:, :, : self.heads], k, v)  # (B, T, heads * head_dim)
            h = layer.o(attended.to(self.dtype), residual=h)
            x = self.normalized(h)
            h = layer.down(layer.gated(x), residual=h)
        scores = self.head(self.normalized(h[:, -1]))
        return scores.float() if logits is None else logits.copy_(scores)

    def _attention(
        self, cache: _Cache | _SharedCache, valid: torch.Tensor, T: int, start: int
    ) -> Any:
        """``attend(layer, q, k, v)``: write keys and values ``(B, kv_heads, T, head_dim)`` at
        cache columns ``start..start+T`` of ``layer`` and attend queries ``(B, T, heads,
        head_dim)`` over the cached columns: ``(B, T, heads * head_dim)``.

        Decoding on a CPU (one query per row), batched products and a softmax over an
        additive mask, which measured faster than SDPA's kernel there; with a
        :class:`_SharedCache`, the G rows of a prompt read its keys and values once. Else
        SDPA with a boolean mask."""
        if isinstance(cache, _SharedCache):
            return self._shared_decode(cache, start)
        B, end = valid.shape
        scale = 1 / math.sqrt(self.head_dim)
        groups = self.heads // self.kv_heads
        if T == 1 and self.device.type == "cpu":
            # The query's own column is always valid, so no row is fully masked.
            bias = torch.zeros(B, 1, 1, end, dtype=self.attention_dtype, device=self.device)
            bias.masked_fill_(~valid[:, None, None, :], -math.inf)

            def decode(layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> Any:
                keys, values = cache.write(layer, start, k, v)
                # Query head h reads key head h // groups: (B * kv_heads, groups, head_dim).
                q = q.to(self.attention_dtype).mul(scale).view(B * self.kv_heads, groups, -1)
                keys = keys.reshape(B * self.kv_heads, end, self.head_dim)
                scores = torch.bmm(q, keys.transpose(1, 2)).view(B, self.kv_heads, groups, end)
                weights = (scores + bias).softmax(dim=-1).view(B * self.kv_heads, groups, end)
                attended = torch.bmm(weights, values.reshape(B * self.kv_heads, end, -1))
                return attended.view(B, 1, self.heads * self.head_dim)

            return decode
        causal = torch.ones(T, end, dtype=torch.bool, device=self.device).tril(start)
        # A left-padding query would attend to nothing (a NaN row): every token sees itself.
        itself = torch.zeros(T, end, dtype=torch.bool, device=self.device)
        itself[:, start:] = torch.eye(T, dtype=torch.bool, device=self.device)
        mask = (valid[:, None, None, :] & causal) | itself  # (B, 1, T, end)

        def full(layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> Any:
            keys, values = cache.write(layer, start, k, v)
            attended = F.scaled_dot_product_attention(
                q.transpose(1, 2).to(self.attention_dtype),
                keys,
                values,
                attn_mask=mask,
                scale=scale,
                enable_gqa=True,
            )
            return attended.transpose(1, 2).reshape(B, T, self.heads * self.head_dim)

        return full

    def _shared_decode(self, cache: _SharedCache, start: int) -> Any:
        """Decoding attention over a :class:`_SharedCache`: the prompt's columns as one
        product per prompt for its G rows' queries together, the new columns per row, one
        softmax over both."""
        U, G, P = cache.prompts, cache.group, cache.width
        B, kv, g, D = U * G, self.kv_heads, self.heads // self.kv_heads, self.head_dim
        scale = 1 / math.sqrt(D)

        def decode(layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> Any:
            new_keys, new_values = cache.rows.write(layer, start - P, k, v)  # (B, kv, t, D)
            t = new_keys.shape[2]
            prompt_keys, prompt_values = cache.prompt.keys[layer], cache.prompt.values[layer]
            q = q.to(self.attention_dtype).mul(scale)  # (B, 1, heads, D), heads = kv * g
            # The prompt: (U * kv, G * g) queries against its P columns.
            grouped = q.view(U, G, kv, g, D).transpose(1, 2).reshape(U * kv, G * g, D)
            on_prompt = torch.bmm(grouped, prompt_keys.view(U * kv, P, D).transpose(1, 2))
            on_prompt = (on_prompt.view(U, kv, G, g, P) + cache.bias).transpose(1, 2)
            on_new = torch.bmm(q.view(B * kv, g, D), new_keys.reshape(B * kv, t, D).transpose(1, 2))
            scores = torch.cat([on_prompt.reshape(B, kv, g, P), on_new.view(B, kv, g, t)], dim=-1)
            weights = scores.softmax(dim=-1)
            prompt_weights = weights[..., :P].reshape(U, G, kv, g, P).transpose(1, 2)
            from_prompt = torch.bmm(
                prompt_weights.reshape(U * kv, G * g, P), prompt_values.view(U * kv, P, D)
            ).view(U, kv, G, g, D)
            from_new = torch.bmm(
                weights[..., P:].reshape(B * kv, g, t), new_values.reshape(B * kv, t, D)
            ).view(U, G, kv, g, D)
            return (from_new + from_prompt.transpose(1, 2)).reshape(B, 1, kv * g * D)

        return decode


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

    def view(self, row: int, first: int) -> _Cache:
        """Row ``row`` from column ``first`` on, as a cache of its own: writes land here."""
        keys = [k[row : row + 1, :, first:] for k in self.keys]
        return _Cache(keys, [v[row : row + 1, :, first:] for v in self.values])

    def expand(self, owner: torch.Tensor, width: int, columns: int) -> _Cache:
        """A cache of ``len(owner)`` rows, row i a copy of this cache's row ``owner[i]`` over
        its first ``columns`` columns, with room for ``width`` columns."""

        def grown(tensor: torch.Tensor) -> torch.Tensor:
            rows = tensor.new_empty((owner.shape[0], tensor.shape[1], width, tensor.shape[3]))
            rows[:, :, :columns] = tensor[:, :, :columns].index_select(0, owner)
            return rows

        return _Cache([grown(k) for k in self.keys], [grown(v) for v in self.values])


class _SharedCache:
    """The cache of G rows per prompt (rows ``i * G .. i * G + G - 1`` sample prompt i) that
    keeps each prompt's keys and values once (``prompt``: U rows, ``width`` columns, left
    padding masked by ``bias``) and each row's new ones apart (``rows``): decoding reads the
    prompt once per prompt, not once per row."""

    def __init__(self, prompt: _Cache, rows: _Cache, prompt_valid: torch.Tensor, group: int):
        self.prompt, self.rows, self.group = prompt, rows, group
        self.prompts, self.width = prompt_valid.shape
        bias = torch.zeros(
            prompt_valid.shape, dtype=prompt.keys[0].dtype, device=prompt_valid.device
        )
        self.bias = bias.masked_fill_(~prompt_valid, -math.inf)[:, None, None, None, :]


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

    Returns, per row, the new tokens up to the longest row's end (``pad_id`` after the row
    ended) and the log-prob of each: the log-softmax of the logits at ``logprob_temperature``
    before top-k / top-p truncation, as HF's sampling scores; entries after a row ended are
    meaningless. ``top_k`` 0 and ``top_p`` 1 turn those filters off. ``stops``: EOS ids;
    ``stopped(new_tokens (B, t)) -> (B,) bool``, when given, ends rows on stop strings.
    ``dtype``: the weights' dtype for the products (float32 or bfloat16).
    """
    with torch.no_grad():
        weights = _Model(model, dtype)
        groups = group_prompts(prompts, adapters)
        distinct, distinct_mask = left_pad(groups.prompts, pad_id)  # (U, P)
        width = distinct.shape[1]
        device = weights.device
        distinct, distinct_mask = distinct.to(device), distinct_mask.to(device).bool()
        positions = (distinct_mask.long().cumsum(dim=1) - 1).clamp(min=0)
        owner = groups.owner.to(device)
        rows, unique = owner.shape[0], distinct.shape[0]
        group = _rows_per_prompt(owner, unique)
        # Rows that are their own prompts decode in the prefill's cache (no copy).
        prefill = _Cache.empty(weights, unique, width + (max_new_tokens if group == 1 else 0))
        logits_u = _prefill(weights, distinct, distinct_mask, positions, prefill, groups.adapters)
        cache: _Cache | _SharedCache
        shared = device.type == "cpu" and width >= _SHARED_MIN_COLUMNS
        if group == 1:
            cache = prefill
        elif shared and group is not None:
            new = _Cache.empty(weights, rows, max_new_tokens)
            cache = _SharedCache(prefill, new, distinct_mask, group)
        else:
            cache = prefill.expand(owner, width + max_new_tokens, width)
        del prefill
        weights.route(adapters)
        logits = logits_u.index_select(0, owner)  # (B, V)
        valid = torch.ones(owner.shape[0], width + max_new_tokens, dtype=torch.bool, device=device)
        valid[:, :width] = distinct_mask.index_select(0, owner)
        next_position = positions[:, -1].index_select(0, owner) + 1  # (B,)
        tokens = torch.full((rows, max_new_tokens), pad_id, dtype=torch.long, device=device)
        logprobs = torch.zeros(rows, max_new_tokens, device=device)
        done = torch.zeros(rows, dtype=torch.bool, device=device)
        stop_ids = torch.tensor(sorted(stops), device=device)
        steps = 0
        buffer = torch.empty_like(logits)
        for step in range(max_new_tokens):
            picked, logprob = _draw(logits, temperature, top_k, top_p, logprob_temperature)
            picked = torch.where(done, torch.full_like(picked, pad_id), picked)
            tokens[:, step] = picked
            logprobs[:, step] = logprob
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
                buffer,
            )
            next_position = next_position + 1
    return list(zip(tokens[:, :steps].cpu(), logprobs[:, :steps].cpu(), strict=True))


def _prefill(
    weights: _Model,
    ids: torch.Tensor,
    valid: torch.Tensor,
    positions: torch.Tensor,
    cache: _Cache,
    adapters: list[str] | None,
) -> torch.Tensor:
    """Run the left-padded prompts ``ids (U, P)`` (row i through ``adapters[i]``) into cache
    columns ``0..P-1``; the logits of each prompt's last token ``(U, V)``.

    On a CPU, when the padded width ``P`` is at least ``_SPLIT_PREFILL_MIN_COLUMNS`` and there
    are several prompts, one prompt at a time over its own tokens only: the padding
    of a batch of unequal prompts costs products and attention for nothing (a third of the
    attention time on a batch of 32 tldr prompts), and a product of a few hundred tokens is
    as efficient per token as a batched one. Elsewhere, one batched pass."""
    U, P = ids.shape
    if weights.device.type != "cpu" or P < _SPLIT_PREFILL_MIN_COLUMNS or U == 1:
        weights.route(adapters)
        return weights.forward(ids, positions, cache, 0, valid)
    logits = []
    for i, length in enumerate(valid.sum(dim=1).tolist()):
        first = P - length
        weights.route(None if adapters is None else [adapters[i]])
        own = cache.view(i, first)  # row i from column ``first`` on
        if first:
            for columns in (*cache.keys, *cache.values):
                columns[i, :, :first] = 0  # masked, but read: no stale NaN may sit there
        logits.append(
            weights.forward(
                ids[i : i + 1, first:],
                positions[i : i + 1, first:],
                own,
                0,
                valid[i : i + 1, first:],
            )
        )
    return torch.cat(logits)


def _draw(
    logits: torch.Tensor,
    temperature: float,
    top_k: int,
    top_p: float,
    logprob_temperature: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One token per row of ``logits (B, V)`` (overwritten): the argmax (temperature 0) or a
    draw from HF's temperature / top-k / top-p distribution, by inverse CDF on one uniform
    draw per row; and its log-prob at ``logprob_temperature`` before truncation.

    In place; top-p looks only at the largest masses (:func:`_nucleus_floor`), not a sort of
    the whole vocabulary (which measured 15 ms a step)."""
    if temperature != logprob_temperature or temperature == 0:
        scored = torch.log_softmax(logits / logprob_temperature, dim=-1)
        if temperature == 0:
            picked = logits.argmax(dim=-1)
            return picked, scored.gather(1, picked[:, None])[:, 0]
        picked, _ = _draw(logits, temperature, top_k, top_p, temperature)
        return picked, scored.gather(1, picked[:, None])[:, 0]
    scores = logits.mul_(1 / temperature)
    mass = scores.sub_(scores.amax(dim=-1, keepdim=True)).exp_()  # exp(score - max)
    total = mass.sum(dim=-1)  # the mass before truncation, for the log-prob
    if top_k and top_k < mass.shape[-1]:
        kth = torch.topk(mass, top_k).values[:, -1:]
        mass.masked_fill_(mass < kth, 0)
    if top_p < 1:
        mass.masked_fill_(mass < _nucleus_floor(mass, top_p), 0)
    picked = _inverse_cdf(mass, torch.rand(mass.shape[0], 1, device=mass.device))
    chosen = mass.gather(1, picked[:, None])[:, 0]
    # Rounding can land a draw on a token without mass at the end: step back to the last
    # token with mass.
    zero = chosen == 0
    if bool(zero.any()):
        last = mass.shape[-1] - 1 - (mass.flip(-1) > 0).int().argmax(dim=-1)
        picked = torch.where(zero, last, picked)
        chosen = mass.gather(1, picked[:, None])[:, 0]
    # mass[picked] is exp(score - max) untouched by truncation, total the full sum.
    return picked, chosen.log() - total.log()


def _nucleus_floor(mass: torch.Tensor, top_p: float) -> torch.Tensor:
    """The smallest mass each row of ``mass (B, V)`` keeps under top-p ``(B, 1)``: HF's rule
    (drop the least likely tokens while their sum is at most ``1 - top_p`` of the total) as
    keep token j of the descending order while the mass before it is below ``top_p`` times
    the row's total. Tokens tied with the last kept one are all kept (HF keeps those its sort
    puts first): the same sets unless masses tie exactly at the boundary.

    Only the largest ``k`` masses are found (``topk``), ``k`` growing 4x until every row's
    nucleus ends inside them: a nucleus is usually far smaller than the vocabulary (on the
    embedded model at top-p 0.95: median 3 tokens, at most about 1,000), and a sort of the
    whole vocabulary measured 15 ms a step. A flat distribution or a top-p near 1 can still
    end in a ``topk`` of the whole vocabulary."""
    goal = top_p * mass.sum(dim=-1, keepdim=True)
    k = min(_NUCLEUS_GUESS, mass.shape[-1])
    while True:
        ordered = torch.topk(mass, k, dim=-1).values  # (B, k), descending
        before = ordered.cumsum(dim=-1) - ordered
        kept = (before < goal).sum(dim=-1, keepdim=True).clamp(min=1)  # (B, 1)
        # A row with kept < k has a token that ends its nucleus among its k largest.
        if k == mass.shape[-1] or bool((kept < k).all()):
            return ordered.gather(1, kept - 1)
        k = min(4 * k, mass.shape[-1])


#: The first number of candidates :func:`_nucleus_floor` looks at.
_NUCLEUS_GUESS = 256


#: The shortest prompt (in columns, padding included) whose keys and values the G rows of a
#: prompt read from one copy while decoding: measured 6% faster at 250 columns (the reads
#: saved), 3% slower at 60 (the extra kernels).
_SHARED_MIN_COLUMNS = 128

#: Prompts at least this long (padded) prefill one at a time on a CPU (:func:`_prefill`).
_SPLIT_PREFILL_MIN_COLUMNS = 128


def _rows_per_prompt(owner: torch.Tensor, prompts: int) -> int | None:
    """G when rows ``owner`` (the prompt of each) are G rows per prompt, in order (rows
    ``i * G .. i * G + G - 1`` on prompt i); else None."""
    rows = owner.shape[0]
    if rows % prompts:
        return None
    expected = torch.arange(prompts, device=owner.device).repeat_interleave(rows // prompts)
    return rows // prompts if torch.equal(owner, expected) else None


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
