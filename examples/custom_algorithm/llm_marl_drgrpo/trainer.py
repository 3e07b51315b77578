"""The ``drgrpo`` trainer: MAGRPO's stages with two of them changed (imports torch).

Dr.GRPO ("Understanding R1-Zero-Like Training", arXiv 2503.20783) removes two biases of GRPO:
advantages are not divided by the group's std, and a response's token terms are summed and
divided by one constant instead of by its own length. The core loss of a group is
``-(1/G) * sum_g A_g * sum_t log pi``; dividing it by ``max_new_tokens`` gives Dr.GRPO's
``-(1 / (G * max_new_tokens)) * sum_g sum_t A_g log pi``.
"""

from __future__ import annotations

from typing import ClassVar

from llm_marl.baselines.config import TrainConfig
from llm_marl.baselines.credit import Credit, CreditEstimator, GroupBaseline
from llm_marl.baselines.magrpo import MAGRPOTrainer
from llm_marl.baselines.update import LossStats, backpropagate
from llm_marl_drgrpo.spec import DrGRPOConfig


class DrGRPOTrainer(MAGRPOTrainer):
    """Multi-agent Dr.GRPO on the shared team return."""

    config_class: ClassVar[type[TrainConfig]] = DrGRPOConfig

    def make_estimator(self) -> CreditEstimator:
        """Stage 2: the group baseline, never scaled by the group's std."""
        return GroupBaseline(self.return_settings(), self.config.advantage, scale_by_std=False)

    def loss(self, task: Credit, scale: float) -> LossStats:
        """Stage 3: the token-sum loss over the constant ``G * max_new_tokens``."""
        factor = scale / self.config.max_new_tokens
        return backpropagate(self.team, task.groups, self.loss_settings, factor)
