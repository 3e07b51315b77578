"""MARLOO: MAGRPO with the leave-one-out baseline (each sample against its G-1 siblings).

The config's ``advantage`` defaults to ``rloo``; everything else is MAGRPO's.
"""

from __future__ import annotations

from typing import ClassVar

from llm_marl.baselines.config import MARLOOConfig, TrainConfig
from llm_marl.baselines.magrpo import MAGRPOTrainer

__all__ = ["MARLOOConfig", "MARLOOTrainer"]


class MARLOOTrainer(MAGRPOTrainer):
    """Multi-agent RLOO on the shared team return."""

    config_class: ClassVar[type[TrainConfig]] = MARLOOConfig
