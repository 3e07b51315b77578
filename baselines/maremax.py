"""MAReMax: the baseline of each node is the team return of the agents' joint greedy answer.

The rollout scores one extra greedy answer per agent at every node (one more batched
``generate`` call per turn); :class:`~llm_marl.baselines.credit.ReMaxBaseline` subtracts its
return from every sample's. Everything else is MAGRPO's.
"""

from __future__ import annotations

from typing import ClassVar

from llm_marl.baselines.config import MAReMaxConfig, TrainConfig
from llm_marl.baselines.credit import CreditEstimator, ReMaxBaseline
from llm_marl.baselines.magrpo import MAGRPOTrainer

__all__ = ["MAReMaxConfig", "MAReMaxTrainer"]


class MAReMaxTrainer(MAGRPOTrainer):
    """Multi-agent ReMax on the shared team return."""

    config_class: ClassVar[type[TrainConfig]] = MAReMaxConfig

    def make_estimator(self) -> CreditEstimator:
        """The greedy joint answer's return as the baseline."""
        return ReMaxBaseline(self.return_settings(), scale_by_std=self.config.scale_by_std)
