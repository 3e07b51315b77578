"""MAAC: multi-agent actor-critic with one centralised critic and shared advantages.

The critic reads every agent's prompt (``critic_type: v``) or every prompt and the joint
answer (``critic_type: q``); all agents share its advantage, as they share the team reward
(:mod:`~llm_marl.baselines.actor_critic`). Joint actions are ``aligned`` or ``cross``.
"""

from __future__ import annotations

from typing import ClassVar

from llm_marl.baselines.actor_critic import ActorCriticTrainer, CriticInputs
from llm_marl.baselines.config import MAACConfig, TrainConfig

__all__ = ["MAACConfig", "MAACTrainer"]


class MAACTrainer(ActorCriticTrainer):
    """A centralised V or Q critic for the whole team."""

    config_class: ClassVar[type[TrainConfig]] = MAACConfig
    config: MAACConfig

    @property
    def joint_mode(self) -> str:
        """``aligned`` or ``cross``, from the config."""
        return self.config.joint_mode

    def inputs(self) -> CriticInputs:
        """Every agent's prompt, and the joint answer for a Q critic."""
        return CriticInputs(central=True, q=self.config.critic_type == "q")
