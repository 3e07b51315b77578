"""MAGRPO (arXiv 2508.04652): every agent learns from the shared team reward.

Each agent samples G responses; joint actions are ``aligned`` (sample g of every agent) or
``cross`` (every combination; a sample's return is its mean over the joint actions it is in);
one group-relative advantage per joint action, shared by the agents; one optimiser per agent.
"""

from __future__ import annotations

from typing import ClassVar

from llm_marl.baselines.config import MAGRPOConfig, TrainConfig
from llm_marl.baselines.trainer import Trainer

__all__ = ["MAGRPOConfig", "MAGRPOTrainer"]


class MAGRPOTrainer(Trainer):
    """Multi-agent GRPO with a shared team reward and a shared group baseline."""

    config_class: ClassVar[type[TrainConfig]] = MAGRPOConfig
    config: MAGRPOConfig

    @property
    def joint_mode(self) -> str:
        """``aligned`` or ``cross``, from the config."""
        return self.config.joint_mode
