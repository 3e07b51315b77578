"""IAC: independent actor-critic; each agent has its own critic, valuing its own prompt.

Agent i's advantage is its return minus V_i(o_i) (GAE over the turns of a multi-turn tree);
the critics are LoRA adapters with value heads on the team's shared base
(:mod:`~llm_marl.baselines.actor_critic`). Returns come from the team reward by default
(``reward: own`` for each agent's own env reward).
"""

from __future__ import annotations

from typing import ClassVar

from llm_marl.baselines.actor_critic import ActorCriticTrainer
from llm_marl.baselines.config import IACConfig, TrainConfig

__all__ = ["IACConfig", "IACTrainer"]


class IACTrainer(ActorCriticTrainer):
    """One critic per agent, on its own prompt."""

    config_class: ClassVar[type[TrainConfig]] = IACConfig
