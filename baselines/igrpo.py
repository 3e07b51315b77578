"""Independent GRPO: each agent learns from its own individual reward and own group baseline.

The env runs with ``reward_mode="individual"``, so ``rewards[agent]`` is the agent's own share;
agent i's advantages are computed over its own G rewards. No team reward enters the update
(it is still logged as ``team_reward_mean`` to compare with MAGRPO).
"""

from __future__ import annotations

from typing import Any, ClassVar

from llm_marl.baselines.config import IGRPOConfig, TrainConfig
from llm_marl.baselines.trainer import Trainer

__all__ = ["IGRPOConfig", "IGRPOTrainer"]


class IGRPOTrainer(Trainer):
    """GRPO per agent on the env's individual rewards."""

    config_class: ClassVar[type[TrainConfig]] = IGRPOConfig
    reward_source: ClassVar[str] = "own"

    def env_options(self) -> dict[str, Any]:
        """The individual reward of each agent."""
        return {"reward_mode": "individual"}
