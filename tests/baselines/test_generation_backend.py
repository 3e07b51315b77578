"""The trainers sample through their generation backend: synced after every update, closed at
the end of training; TIS and the log-prob mismatch metric (here on the hf backend, whose
samples are the team's own; ``test_vllm_training`` runs vLLM for real)."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from llm_marl.baselines import MAGRPOConfig, MAGRPOTrainer
from llm_marl.baselines.cli import build_train_parser
from llm_marl.baselines.config import GENERATION_BACKENDS
from llm_marl.models import Completion, SamplingConfig, Team, load_policy
from llm_marl.models.backends import BACKENDS, HFBackend, check_fusable


class CountingBackend(HFBackend):
    """The hf backend, counting what the trainer asks of it."""

    def __init__(self) -> None:
        self.calls = {"generate": 0, "sync": 0, "close": 0}

    def generate(
        self, team: Team, requests: Sequence[tuple[str, str]], config: SamplingConfig
    ) -> list[list[Completion]]:
        self.calls["generate"] += 1
        return super().generate(team, requests, config)

    def sync(self, team: Team) -> None:
        self.calls["sync"] += 1

    def close(self) -> None:
        self.calls["close"] += 1


def test_the_config_names_the_backends_of_the_models_package() -> None:
    assert GENERATION_BACKENDS == BACKENDS
    with pytest.raises(ValueError, match="generation_backend must be one of"):
        MAGRPOConfig(generation_backend="jax")
    with pytest.raises(ValueError, match="tis_cap must be > 0"):
        MAGRPOConfig(tis_cap=0.0)
    with pytest.raises(ValueError, match="generation_dtype must be one of"):
        MAGRPOConfig(generation_backend="vllm", generation_dtype="int4")
    with pytest.raises(ValueError, match="use it with generation_backend: fused or vllm"):
        MAGRPOConfig(generation_dtype="bfloat16")
    with pytest.raises(ValueError, match="use it with generation_backend: fused \\(or"):
        MAGRPOConfig(generation_dtype="auto")  # the one backend that takes auto
    with pytest.raises(ValueError, match="'auto' is for generation_backend: fused only"):
        MAGRPOConfig(generation_backend="vllm", generation_dtype="auto")
    with pytest.raises(ValueError, match="'float16' is for generation_backend: vllm only"):
        MAGRPOConfig(generation_backend="fused", generation_dtype="float16")
    parser = build_train_parser(MAGRPOConfig)
    args = parser.parse_args(
        ["--generation-backend", "vllm", "--tis-cap", "2", "--generation-dtype", "bfloat16"]
    )
    assert args.generation_backend == "vllm" and args.tis_cap == 2.0
    assert args.generation_dtype == "bfloat16"


def test_every_update_syncs_the_backend_and_a_given_one_stays_open(
    fast: dict[str, Any],
) -> None:
    config = MAGRPOConfig(**fast, num_steps=2, checkpoint_every=0)
    backend = CountingBackend()
    trainer = MAGRPOTrainer(config, team=load_policy("tiny", agents=["left_0", "right_1"]))
    trainer._backend = backend  # as if the trainer had started it: train() closes it
    trainer._owns_backend = True
    trainer.train()
    assert backend.calls == {"generate": 2, "sync": 2, "close": 1}
    given = CountingBackend()
    config = MAGRPOConfig(**fast, num_steps=1, run_name="given")
    team = load_policy("tiny", agents=["left_0", "right_1"])
    MAGRPOTrainer(config, team=team, backend=given).train()
    assert given.calls == {"generate": 1, "sync": 1, "close": 0}  # the caller closes it


def test_the_hf_backend_logs_no_mismatch_and_tis_logs_it(fast: dict[str, Any]) -> None:
    plain, _ = MAGRPOTrainer(MAGRPOConfig(**fast, num_steps=1)).train_step()
    assert not any(k.startswith("logprob_mismatch") for k in plain)
    config = MAGRPOConfig(**fast, num_steps=1, tis_cap=2.0, run_name="tis")
    metrics, _ = MAGRPOTrainer(config).train_step()
    assert 0 <= metrics["logprob_mismatch/mean"] <= metrics["logprob_mismatch/max"] < 1e-4


def test_a_vllm_run_is_refused_up_front_where_vllm_is_missing(fast: dict[str, Any]) -> None:
    """Before any rollout (or engine start): one error naming the extras and .venv-vllm."""
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here (its own tests cover the vllm runs)")
    config = MAGRPOConfig(**fast, num_steps=1, generation_backend="vllm")
    with pytest.raises(ImportError, match=r"llm-marl\[vllm\].*\.venv-vllm"):
        MAGRPOTrainer(config, team=load_policy("tiny", agents=["left_0", "right_1"]))


def test_the_fused_backend_trains_with_the_trainers_logprobs(fast: dict[str, Any]) -> None:
    """float32: the recorded log-probs are the trainer's (no mismatch metric, no extra pass);
    bfloat16: the loss's own log-probs are the ratios' old policy, and the gap is logged."""
    exact, _ = MAGRPOTrainer(
        MAGRPOConfig(**fast, num_steps=1, generation_backend="fused")
    ).train_step()
    assert not any(k.startswith("logprob_mismatch") for k in exact)
    assert exact["completion_tokens/left_0"] > 0
    config = MAGRPOConfig(
        **fast, num_steps=1, generation_backend="fused", generation_dtype="bfloat16", run_name="b"
    )
    trainer = MAGRPOTrainer(config)
    metrics, _ = trainer.train_step()
    assert trainer.loss_settings.old_from_loss
    assert 0 < metrics["logprob_mismatch/mean"] <= metrics["logprob_mismatch/max"] < 0.5


def test_several_updates_per_batch_fix_the_old_logprobs_first(fast: dict[str, Any]) -> None:
    config = MAGRPOConfig(
        **fast,
        num_steps=1,
        generation_backend="fused",
        generation_dtype="bfloat16",
        inner_epochs=2,
        clip_epsilon=0.2,
    )
    trainer = MAGRPOTrainer(config)
    metrics, _ = trainer.train_step()
    assert not trainer.loss_settings.old_from_loss  # recomputed before the first update
    assert 0 < metrics["logprob_mismatch/mean"] < 0.5


def test_a_fused_run_is_refused_up_front_for_a_model_it_cannot_run(
    fast: dict[str, Any], tmp_path: Path
) -> None:
    from transformers import LlamaForCausalLM

    from llm_marl.models import tiny_llama

    model, tokenizer = tiny_llama()
    model.config.attention_bias = True
    LlamaForCausalLM(model.config).save_pretrained(tmp_path / "biased")
    tokenizer.save_pretrained(tmp_path / "biased")
    config = MAGRPOConfig(**{**fast, "model": str(tmp_path / "biased")}, generation_backend="fused")
    with pytest.raises(ValueError, match=r"fused backend cannot run .*without biases"):
        MAGRPOTrainer(config)
    with pytest.raises(TypeError, match="fused backend samples a LoRA team"):
        check_fusable(object())  # type: ignore[arg-type]


def test_a_loss_under_autocast_takes_its_own_logprobs_as_the_old_policy(
    fast: dict[str, Any],
) -> None:
    """The hf sampler's float32 log-probs are not a bfloat16 loss's: before any update no
    token is clipped, and the gap is logged."""
    config = MAGRPOConfig(**fast, num_steps=1, clip_epsilon=0.2, autocast_dtype="bfloat16")
    trainer = MAGRPOTrainer(config)
    metrics, _ = trainer.train_step()
    assert trainer.loss_settings.old_from_loss
    assert metrics["clip_fraction"] == 0.0
    assert 0 < metrics["logprob_mismatch/mean"] < 0.5


def test_a_fused_sampler_in_another_dtype_than_the_team_is_not_exact() -> None:
    from llm_marl.models.backends import FusedBackend

    team = load_policy("tiny", agents=["left_0", "right_1"], dtype="bfloat16")
    assert not FusedBackend(team, "float32").exact_logprobs
    assert FusedBackend(team, "bfloat16").exact_logprobs
