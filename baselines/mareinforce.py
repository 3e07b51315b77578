"""MA-REINFORCE: MAGRPO without a baseline; each sample's advantage is its raw team return.

The config's ``advantage`` defaults to ``raw``; everything else is MAGRPO's.
"""

from __future__ import annotations

from typing import ClassVar

from llm_marl.baselines.config import MAREINFORCEConfig, TrainConfig
from llm_marl.baselines.magrpo import MAGRPOTrainer

__all__ = ["MAREINFORCEConfig", "MAREINFORCETrainer"]


class MAREINFORCETrainer(MAGRPOTrainer):
    """Multi-agent REINFORCE on the shared team return."""

    config_class: ClassVar[type[TrainConfig]] = MAREINFORCEConfig
