"""The fused sampler (:mod:`llm_marl.models.decode`) computes the same model as HF: greedy
answers equal HF ``generate``'s, recorded log-probs equal the trainer's recomputation, its
sampler draws the temperature / top-k / top-p distribution, weight updates are seen, and
models it cannot run are refused."""

from __future__ import annotations

import string
from typing import Any

import pytest
import torch
from small_models import small_llama
from transformers import (
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from llm_marl.models import SamplingConfig, decode, load_policy, tiny_tokenizer
from llm_marl.models.backends import FusedBackend, check_fusable, make_backend
from llm_marl.models.decode import (
    FusedDecoding,
    _draw,
    _inverse_cdf,
    resolve_dtype,
    unsupported_reason,
)
from llm_marl.models.generation import sample_completions

AGENTS = ["left_0", "right_1"]
#: Prompts of different lengths, so rows are left-padded.
REQUESTS = [("left_0", "go"), ("right_1", "a longer prompt for the second agent")]


def _team() -> Any:
    """The tiny LoRA team with adapters that differ (PEFT starts every lora_B at zero)."""
    torch.manual_seed(0)
    team = load_policy("tiny", agents=AGENTS)
    with torch.no_grad():
        for name, parameter in team.model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    return team


def _same(hf: list[list[Any]], fused: list[list[Any]], tolerance: float = 1e-5) -> None:
    for hf_group, fused_group in zip(hf, fused, strict=True):
        for a, b in zip(hf_group, fused_group, strict=True):
            assert a.token_ids.tolist() == b.token_ids.tolist()
            assert a.text == b.text and a.finish_reason == b.finish_reason
            assert torch.allclose(a.logprobs, b.logprobs, atol=tolerance)


@pytest.mark.parametrize("split", [True, False], ids=["prefill-per-prompt", "prefill-batched"])
@pytest.mark.parametrize("shared", [True, False], ids=["prompt-read-once", "prompt-per-row"])
@pytest.mark.parametrize("packed", [True, False], ids=["onednn-layout", "plain-weights"])
def test_greedy_answers_equal_hf_generate_for_every_agent(
    packed: bool, shared: bool, split: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Weights in oneDNN's blocked layout (CPU) and plain weights (elsewhere) both decode as
    HF does, with the G rows of a prompt reading its keys and values from one copy or each
    from its own, and the prompts prefilled in one padded batch or one at a time."""
    monkeypatch.setattr(decode, "_SHARED_MIN_COLUMNS", 0 if shared else 10**9)
    monkeypatch.setattr(decode, "_SPLIT_PREFILL_MIN_COLUMNS", 0 if split else 10**9)
    if not packed:
        monkeypatch.setattr(decode, "_packable", lambda weight: False)
    elif not decode._packable(torch.zeros(2, 2)):
        pytest.skip("this torch has no oneDNN")
    team = _team()
    config = SamplingConfig(num_samples=2, max_new_tokens=12, temperature=0.0)
    hf = team.generate(REQUESTS, config)
    fused = team.generate(REQUESTS, config, fused=FusedDecoding())
    _same(hf, fused)
    # One sample per prompt: the rows decode in the prefill's own cache.
    single = SamplingConfig(num_samples=1, max_new_tokens=12, temperature=0.0)
    _same(team.generate(REQUESTS, single), team.generate(REQUESTS, single, fused=FusedDecoding()))
    # The adapters matter: the two agents answer the same prompt differently.
    same_prompt = [("left_0", "go"), ("right_1", "go")]
    left, right = team.generate(same_prompt, config, fused=FusedDecoding())
    assert left[0].token_ids.tolist() != right[0].token_ids.tolist()


def test_stop_strings_end_answers_where_hf_ends_them() -> None:
    team = _team()
    config = SamplingConfig(
        num_samples=1, max_new_tokens=20, temperature=0.0, stop=tuple(string.ascii_lowercase)
    )
    _same(team.generate(REQUESTS, config), team.generate(REQUESTS, config, fused=FusedDecoding()))


@pytest.mark.parametrize(("top_k", "top_p"), [(0, 0.9), (0, 1.0), (7, 0.95)])
def test_sampled_logprobs_equal_the_trainers_recomputation(top_k: int, top_p: float) -> None:
    team = _team()
    config = SamplingConfig(
        num_samples=4, max_new_tokens=10, temperature=0.8, top_k=top_k, top_p=top_p
    )
    torch.manual_seed(1)
    completions = [c for g in team.generate(REQUESTS, config, fused=FusedDecoding()) for c in g]
    recomputed = team.logprobs(completions)
    for completion, logprobs in zip(completions, recomputed, strict=True):
        assert torch.allclose(completion.logprobs, logprobs.detach(), atol=1e-5)


def test_bfloat16_samples_stay_close_to_the_float32_model() -> None:
    team = _team()
    config = SamplingConfig(num_samples=2, max_new_tokens=10, temperature=1.0)
    torch.manual_seed(2)
    groups = team.generate(REQUESTS, config, fused=FusedDecoding("bfloat16"))
    completions = [c for g in groups for c in g]
    gaps = torch.cat(
        [
            (c.logprobs - r.detach()).abs()
            for c, r in zip(completions, team.logprobs(completions), strict=True)
        ]
    )
    assert torch.isfinite(gaps).all() and 0 < float(gaps.mean()) < 0.05


@pytest.mark.parametrize(
    ("temperature", "top_k", "top_p"),
    [(1.0, 0, 1.0), (0.7, 5, 1.0), (1.3, 0, 0.6), (0.8, 0, 0.97), (0.9, 12, 0.8)],
)
def test_the_sampler_draws_hf_warpers_distribution(
    temperature: float, top_k: int, top_p: float
) -> None:
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(1, 40, generator=generator) * 2
    scores = TemperatureLogitsWarper(temperature)(None, logits.clone())  # type: ignore[arg-type]
    if top_k:
        scores = TopKLogitsWarper(top_k)(None, scores)  # type: ignore[arg-type]
    if top_p < 1:
        scores = TopPLogitsWarper(top_p)(None, scores)  # type: ignore[arg-type]
    expected = scores.softmax(dim=-1)[0]
    torch.manual_seed(4)
    draws, _ = _draw(logits.expand(40_000, -1).clone(), temperature, top_k, top_p, temperature)
    observed = torch.bincount(draws, minlength=40).float() / draws.shape[0]
    assert (observed[expected == 0] == 0).all()  # never a token the warpers removed
    assert torch.allclose(observed, expected, atol=0.01)


def test_the_two_level_search_finds_the_token_a_full_cdf_finds() -> None:
    """Over several blocks and a vocabulary that is not a whole number of them, with blocks
    of zero mass: the same token as one cumsum over the whole vocabulary."""
    generator = torch.Generator().manual_seed(5)
    probs = torch.rand(3000, 1000, generator=generator, dtype=torch.float64)
    probs[:, 256:600] = 0  # whole blocks without mass
    probs[:, ::7] = 0
    uniform = torch.rand(3000, 1, generator=generator, dtype=torch.float64)
    cdf = probs.cumsum(dim=-1)
    expected = torch.searchsorted(cdf, uniform * cdf[:, -1:], right=True)[:, 0]
    picked = _inverse_cdf(probs, uniform)
    assert torch.equal(picked, expected)
    assert (probs.gather(1, picked[:, None]) > 0).all()
    assert int(picked.max()) > 600  # draws land in the blocks after the empty ones


def test_the_logprob_is_at_its_own_temperature_before_truncation() -> None:
    generator = torch.Generator().manual_seed(6)
    logits = torch.randn(64, 50, generator=generator) * 3
    for temperature, logprob_temperature in [(0.7, 0.7), (0.7, 1.0)]:
        picked, logprobs = _draw(logits.clone(), temperature, 4, 0.9, logprob_temperature)
        expected = (logits / logprob_temperature).log_softmax(dim=-1)
        assert torch.allclose(logprobs, expected.gather(1, picked[:, None])[:, 0], atol=1e-5)
        assert (logits.topk(4).values[:, -1] <= logits.gather(1, picked[:, None])[:, 0]).all()


def test_greedy_picks_the_argmax() -> None:
    logits = torch.tensor([[0.0, 3.0, 1.0], [5.0, 0.0, 1.0]])
    picked, logprobs = _draw(logits.clone(), 0.0, 0, 1.0, 1.0)
    assert picked.tolist() == [1, 0]
    assert torch.allclose(logprobs, logits.log_softmax(dim=-1)[[0, 1], [1, 0]])


def test_weight_updates_are_used_on_the_next_call() -> None:
    """Base weights changed in place (full fine-tuning) and new adapter weights are read."""
    team = _team()
    config = SamplingConfig(num_samples=1, max_new_tokens=12, temperature=0.0)
    before = team.generate(REQUESTS, config, fused=FusedDecoding())
    with torch.no_grad():
        for name, parameter in team.model.named_parameters():
            if "gate_proj.weight" in name or "lora_A" in name:
                parameter.add_(torch.randn_like(parameter) * 0.5)
    after_hf = team.generate(REQUESTS, config)
    after = team.generate(REQUESTS, config, fused=FusedDecoding())
    _same(after_hf, after)
    assert [c.token_ids.tolist() for g in after for c in g] != [
        c.token_ids.tolist() for g in before for c in g
    ]


def test_converted_weights_are_kept_per_dtype_until_their_sources_change() -> None:
    """Calls alternating between dtypes convert nothing twice; an update drops stale copies."""
    team = _team()
    config = SamplingConfig(num_samples=1, max_new_tokens=4, temperature=0.0)
    store = decode._store(team.model)
    team.generate(REQUESTS, config, fused=FusedDecoding("float32"))
    float32 = {k: v[1] for k, v in store.entries.items()}
    team.generate(REQUESTS, config, fused=FusedDecoding("bfloat16"))
    team.generate(REQUESTS, config, fused=FusedDecoding("float32"))
    assert all(store.entries[k][1] is matrix for k, matrix in float32.items())
    assert {k[0] for k in store.entries} == {torch.float32, torch.bfloat16}
    with torch.no_grad():
        for name, parameter in team.model.named_parameters():
            if "gate_proj.weight" in name:
                parameter.add_(1.0)
    team.generate(REQUESTS, config, fused=FusedDecoding("float32"))
    # The bfloat16 copies of the changed weights are gone; those of the others stay.
    changed = {id(p) for n, p in team.model.named_parameters() if "gate_proj.weight" in n}
    for key, (sources, _) in store.entries.items():
        assert all(v == p._version for (_, v), p in zip(key[1], sources, strict=True))
    bfloat16 = [k for k in store.entries if k[0] == torch.bfloat16]
    assert bfloat16 and not any(i in changed for k in bfloat16 for i, _ in k[1])


def test_writes_through_data_are_used_after_forget_converted_weights() -> None:
    """``.data`` writes do not advance the version counter; forgetting the copies helps."""
    team = _team()
    config = SamplingConfig(num_samples=1, max_new_tokens=6, temperature=0.0)
    before = team.generate(REQUESTS, config, fused=FusedDecoding())
    for name, parameter in team.model.named_parameters():
        if "down_proj.base_layer.weight" in name or name.endswith("down_proj.weight"):
            parameter.data.mul_(0).add_(torch.randn_like(parameter) * 2)
    hf = team.generate(REQUESTS, config)
    assert [c.token_ids.tolist() for g in hf for c in g] != [
        c.token_ids.tolist() for g in before for c in g
    ]
    decode.forget_converted_weights(team.model)
    _same(hf, team.generate(REQUESTS, config, fused=FusedDecoding()))


def test_a_plain_model_and_a_batch_limit_are_served() -> None:
    """No adapters at all, several generate calls (batch_size): still HF's answers."""
    team = load_policy("tiny", agents=["solo_0"], lora=None)
    model, tokenizer = next(iter(team.models.values())), tiny_tokenizer()
    requests = [("solo_0", "go"), ("solo_0", "stop here")]
    config = SamplingConfig(num_samples=3, max_new_tokens=8, temperature=0.0, batch_size=2)
    hf = sample_completions(model, tokenizer, requests, config)
    fused = sample_completions(model, tokenizer, requests, config, fused=FusedDecoding())
    _same(hf, fused)


def _llama(**overrides: Any) -> Any:
    return small_llama(**overrides)


def test_models_it_cannot_run_are_refused_with_the_reason() -> None:
    assert unsupported_reason(_llama()) is None
    assert "without biases" in str(unsupported_reason(_llama(attention_bias=True)))
    assert "SiLU" in str(unsupported_reason(_llama(hidden_act="gelu")))
    with pytest.raises(ValueError, match=r"fused sampler cannot run this model.*biases"):
        sample_completions(
            _llama(attention_bias=True),
            tiny_tokenizer(),
            [("a", "go")],
            SamplingConfig(max_new_tokens=2),
            fused=FusedDecoding(),
        )


def test_the_backend_reports_whether_its_logprobs_are_the_trainers() -> None:
    team = _team()
    assert isinstance(make_backend("fused", team), FusedBackend)
    assert FusedBackend(team, "float32").exact_logprobs
    assert not FusedBackend(team, "bfloat16").exact_logprobs
    assert resolve_dtype("auto") in (torch.float32, torch.bfloat16)
    with pytest.raises(ValueError, match="dtype must be one of"):
        FusedDecoding("float16")
    check_fusable(team)  # no error


def test_fused_must_be_a_fused_decoding_from_the_models_package() -> None:
    """``fused="auto"`` is refused with what to pass instead; the class is exported."""
    from llm_marl.models import FusedDecoding as Exported

    assert Exported is FusedDecoding
    team = _team()
    config = SamplingConfig(num_samples=1, max_new_tokens=2)
    with pytest.raises(TypeError, match="FusedDecoding"):
        team.generate(REQUESTS, config, fused="auto")
