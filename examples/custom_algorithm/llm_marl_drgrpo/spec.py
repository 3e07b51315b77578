"""The settings and the registration of ``drgrpo``; imports no torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from llm_marl.baselines import AlgorithmSpec
from llm_marl.baselines.config import MAGRPOConfig


@dataclass
class DrGRPOConfig(MAGRPOConfig):
    """Dr.GRPO: MAGRPO with unscaled advantages and token sums over a constant length."""

    algo: ClassVar[str] = "drgrpo"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.scale_by_std or self.loss_aggregation != "sequence_sum":
            raise ValueError(
                "drgrpo never divides by the group's std and sums token terms: leave "
                "scale_by_std off and loss_aggregation at 'sequence_sum'"
            )


SPEC = AlgorithmSpec("drgrpo", DrGRPOConfig, "llm_marl_drgrpo.trainer:DrGRPOTrainer")
