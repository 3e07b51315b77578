"""Baselines: MAGRPO, independent GRPO and single-agent GRPO on llm-marl's PettingZoo envs.

``MAGRPOTrainer(MAGRPOConfig(env="tldr_v0", model="embedded")).train()`` trains one LoRA adapter
per agent and writes ``runs/<name>/`` (``metrics.jsonl``, ``reward.png``, ``config.yaml``,
``checkpoints/``). ``llm-marl train --algo magrpo ...`` is the same from the command line. The
configs import no torch; the trainers (loaded on first use) do.
"""

from __future__ import annotations

import importlib
from typing import Any

from llm_marl.baselines.config import GRPOConfig, IGRPOConfig, MAGRPOConfig, TrainConfig

__all__ = [
    "ALGORITHMS",
    "GRPOConfig",
    "GRPOTrainer",
    "IGRPOConfig",
    "IGRPOTrainer",
    "MAGRPOConfig",
    "MAGRPOTrainer",
    "TrainConfig",
    "Trainer",
    "trainer_class",
]

#: Algorithm name -> (config class, "module:trainer class").
ALGORITHMS: dict[str, tuple[type[TrainConfig], str]] = {
    "magrpo": (MAGRPOConfig, "llm_marl.baselines.magrpo:MAGRPOTrainer"),
    "igrpo": (IGRPOConfig, "llm_marl.baselines.igrpo:IGRPOTrainer"),
    "grpo": (GRPOConfig, "llm_marl.baselines.grpo:GRPOTrainer"),
}
_LAZY = {
    "MAGRPOTrainer": "llm_marl.baselines.magrpo",
    "IGRPOTrainer": "llm_marl.baselines.igrpo",
    "GRPOTrainer": "llm_marl.baselines.grpo",
    "Trainer": "llm_marl.baselines.trainer",
}


def trainer_class(algo: str) -> Any:
    """The trainer class of ``algo`` (imports torch)."""
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algo!r}; choose one of {sorted(ALGORITHMS)}")
    module, name = ALGORITHMS[algo][1].split(":")
    return getattr(importlib.import_module(module), name)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'llm_marl.baselines' has no attribute {name!r}")
