"""Sampling settings, prompt formatting, and where completions end (EOS, stop strings)."""

from __future__ import annotations

import string

import pytest
import torch

from llm_marl.models import SamplingConfig, load_policy, tiny_tokenizer
from llm_marl.models.generation import _finish, format_prompt


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_samples": 0}, "num_samples must be an integer >= 1, got 0"),
        ({"max_new_tokens": 2.5}, "max_new_tokens must be an integer >= 1, got 2.5"),
        ({"temperature": -1.0}, "temperature must be >= 0, got -1.0"),
        ({"top_p": 0.0}, r"top_p must be in \(0, 1\], got 0.0"),
        ({"top_k": -3}, "top_k must be an integer >= 0"),
        ({"stop": ("",)}, "stop strings must be non-empty"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
    ],
)
def test_sampling_config_rejects_bad_values(kwargs: dict, message: str) -> None:
    """Each bad setting is refused with the offending value."""
    with pytest.raises(ValueError, match=message):
        SamplingConfig(**kwargs)


def test_a_single_stop_string_must_be_a_tuple() -> None:
    """stop="x" would silently mean each character; it is refused."""
    with pytest.raises(TypeError, match=r"use \('###',\)"):
        SamplingConfig(stop="###")  # type: ignore[arg-type]


def test_finish_cuts_at_first_eos_and_keeps_it() -> None:
    """Padding after EOS (here pad == EOS, as in SmolLM2) never joins the completion."""
    tokens = torch.tensor([10, 11, 2, 2, 2])
    cut, reason = _finish(tiny_tokenizer(), tokens, {2}, ())
    assert cut.tolist() == [10, 11, 2] and reason == "eos"
    cut, reason = _finish(tiny_tokenizer(), torch.tensor([10, 11, 12]), {2}, ())
    assert cut.tolist() == [10, 11, 12] and reason == "length"


def test_finish_cuts_at_the_end_of_the_first_stop_string() -> None:
    """A stop string ends the completion right after it, before a later EOS."""
    tokenizer = tiny_tokenizer()
    ids = tokenizer("ab###cd")["input_ids"] + [tokenizer.eos_token_id]
    cut, reason = _finish(tokenizer, torch.tensor(ids), {tokenizer.eos_token_id}, ("###",))
    assert tokenizer.decode(cut) == "ab###" and reason == "stop"


def test_stop_strings_end_sampled_completions() -> None:
    """With every letter a stop string, each stopped completion ends at its first letter."""
    team = load_policy("tiny", agents=["a_0"])
    config = SamplingConfig(num_samples=8, max_new_tokens=30, stop=tuple(string.ascii_letters))
    torch.manual_seed(0)
    completions = team.generate([("a_0", "go")], config)[0]
    stopped = [c for c in completions if c.finish_reason == "stop"]
    assert stopped
    for c in stopped:
        assert c.text[-1] in string.ascii_letters
        assert not any(ch in string.ascii_letters for ch in c.text[:-1])
        assert c.logprobs.shape == c.token_ids.shape


def test_greedy_decoding_is_deterministic() -> None:
    """Temperature 0 decodes greedily: every sample is the same."""
    team = load_policy("tiny", agents=["a_0"])
    completions = team.generate([("a_0", "go")], SamplingConfig(temperature=0, num_samples=3))[0]
    assert len({tuple(c.token_ids.tolist()) for c in completions}) == 1


def test_chat_template_wraps_the_prompt_as_a_user_message() -> None:
    """chat_template=True applies the tokenizer's template; False keeps the raw text."""
    tokenizer = tiny_tokenizer()
    assert tokenizer.decode(format_prompt(tokenizer, "hi", True)) == "<user>hi<eos><assistant>"
    assert tokenizer.decode(format_prompt(tokenizer, "hi", False)) == "hi"


def test_too_long_prompts_are_refused() -> None:
    """max_prompt_tokens names the agent and the prompt's length."""
    team = load_policy("tiny", agents=["a_0"])
    config = SamplingConfig(max_prompt_tokens=5, chat_template=False)
    with pytest.raises(ValueError, match="prompt of agent 'a_0' has 11 tokens"):
        team.generate([("a_0", "hello world")], config)


def test_batch_size_splits_generation_without_changing_shapes() -> None:
    """A small batch_size runs several generate calls and still returns every group."""
    team = load_policy("tiny", agents=["a_0", "b_1"])
    config = SamplingConfig(num_samples=3, max_new_tokens=5, batch_size=2)
    groups = team.generate([("a_0", "x"), ("b_1", "y")], config)
    assert [len(g) for g in groups] == [3, 3]
    assert [c.agent for g in groups for c in g] == ["a_0"] * 3 + ["b_1"] * 3


def test_a_stop_string_across_the_prompt_boundary_never_cuts_the_completion() -> None:
    """Only the completion is searched: a prompt ending in "x" with stops "x<letter>" and a
    first sampled letter neither ends the row early nor fills it with forced padding."""
    team = load_policy("tiny", agents=["a_0"])
    pad = team.tokenizer("a_0").pad_token_id
    stops = tuple("x" + letter for letter in string.ascii_letters)
    config = SamplingConfig(
        num_samples=64, max_new_tokens=6, stop=stops, chat_template=False, temperature=2.0
    )
    torch.manual_seed(0)
    completions = team.generate([("a_0", "abcx")], config)[0]
    risky = [c for c in completions if c.text[:1].isalpha()]
    assert risky  # rows whose first token completes "x<letter>" across the boundary
    for c in risky:  # they went on sampling: no tail of forced padding
        assert c.token_ids[1:].tolist() != [pad] * (c.num_tokens - 1)
    for c in completions:
        assert (c.finish_reason == "stop") == any(s in c.text for s in stops)


def test_the_models_own_generation_defaults_do_not_bias_recorded_logprobs() -> None:
    """A repetition penalty or minimum length in the model's generation_config is ignored:
    the recorded log-probs are still the policy's."""
    team = load_policy("tiny", agents=["a_0"])
    team.model.generation_config.repetition_penalty = 1.3
    team.model.generation_config.min_new_tokens = 5
    completions = team.generate([("a_0", "go")], SamplingConfig(num_samples=4, max_new_tokens=8))
    for c, lp in zip(completions[0], team.logprobs(completions[0]), strict=True):
        torch.testing.assert_close(lp.detach(), c.logprobs, atol=1e-5, rtol=0)


def test_logprobs_default_to_the_sampling_temperature() -> None:
    """Without a temperature, recomputation uses each completion's own: ratio 1 at first."""
    team = load_policy("tiny", agents=["a_0"])
    config = SamplingConfig(num_samples=3, max_new_tokens=6, temperature=0.6)
    completions = team.generate([("a_0", "go")], config)[0]
    assert all(c.temperature == 0.6 for c in completions)
    for c, lp in zip(completions, team.logprobs(completions, batch_size=2), strict=True):
        torch.testing.assert_close(lp.detach(), c.logprobs, atol=1e-5, rtol=0)


def test_empty_prompts_are_refused() -> None:
    """A prompt with no tokens cannot condition a completion."""
    team = load_policy("tiny", agents=["a_0"])
    with pytest.raises(ValueError, match="has no tokens"):
        team.generate([("a_0", "")], SamplingConfig(chat_template=False))
