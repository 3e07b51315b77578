"""Single-agent GRPO: one model writes the whole joint answer in one response.

The env runs with ``single_agent=True``: one agent (for example ``writer_0``) gets a prompt
asking for every part, the env splits its answer into the parts and scores them with the same
team reward as the team envs. The update is GRPO: G samples, group-relative advantages.
"""

from __future__ import annotations

from typing import Any, ClassVar

from llm_marl.baselines.config import GRPOConfig, TrainConfig
from llm_marl.baselines.trainer import Trainer

__all__ = ["GRPOConfig", "GRPOTrainer"]


class GRPOTrainer(Trainer):
    """GRPO for one agent on the env's single-agent view."""

    config_class: ClassVar[type[TrainConfig]] = GRPOConfig

    def env_options(self) -> dict[str, Any]:
        """The single-agent view of the env."""
        return {"single_agent": True}
