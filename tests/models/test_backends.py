"""Generation backends: the HF default samples what the team itself samples."""

from __future__ import annotations

import pytest
import torch

from llm_marl.models import SamplingConfig, load_policy
from llm_marl.models.backends import BACKENDS, HFBackend, make_backend


def test_the_hf_backend_is_the_teams_own_generate() -> None:
    """Same seed, same requests: the same tokens and log-probs as ``team.generate``."""
    team = load_policy("tiny", agents=["a_0", "b_1"])
    requests = [("a_0", "one"), ("b_1", "two")]
    config = SamplingConfig(num_samples=2, max_new_tokens=6)
    torch.manual_seed(3)
    direct = team.generate(requests, config)
    torch.manual_seed(3)
    backend = make_backend("hf", team)
    assert isinstance(backend, HFBackend)
    through = backend.generate(team, requests, config)
    for want, got in zip(direct, through, strict=True):
        for a, b in zip(want, got, strict=True):
            assert (a.agent, a.text) == (b.agent, b.text)
            assert torch.equal(a.token_ids, b.token_ids)
            torch.testing.assert_close(a.logprobs, b.logprobs)
    backend.sync(team)  # nothing to sync: the weights are the team's


def test_an_unknown_backend_lists_the_choices() -> None:
    team = load_policy("tiny")
    with pytest.raises(
        ValueError, match=r"unknown generation backend 'trt'.*'hf', 'fused', 'vllm'"
    ):
        make_backend("trt", team)
    assert BACKENDS == ("hf", "fused", "vllm")
