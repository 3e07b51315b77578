"""SkyRL-gym: every llm-marl env in SkyRL-gym's registry, as a single-agent text env.

SkyRL-gym has no multi-agent API (one model, one conversation per episode), so each env is
its single-agent view (``single_agent=True``: one writer answers every part in one message
and gets the team reward). :func:`register_envs` registers each env id as
``"llm_marl:<env_id>"``; ``skyrl_gym.make`` builds a :class:`SkyRLTextEnv`, a
``BaseTextEnv``.

>>> import skyrl_gym
>>> from llm_marl.integrations.skyrl_gym import register_envs
>>> register_envs()
>>> env = skyrl_gym.make("llm_marl:tldr_v0", env_config={"num_turns": 2},
...                      extras={"task_id": "train-00003"})
>>> conversation, _ = env.init([])             # [{"role": "user", "content": prompt}]
>>> out = env.step("my answer")                 # observations, reward, done, metadata

``env_config`` holds keyword arguments of :func:`llm_marl.make` (``split``, ``num_turns``,
``data``, ...); ``extras`` (a SkyRL data-set row) may name the ``task_id`` (or a ``seed``),
else the task is drawn with seed 0. The env's own prompt replaces the prompt given to
``init``, so a data set only needs the task ids.

Sandbox failures: each step's ``metadata`` is the agent's infos, so a coding env's
``metadata["sandbox_status"]`` is ``"sandbox_error"`` when the code sandbox itself failed to
judge the answer; that step's ``reward`` means nothing: drop the trajectory, do not learn from
it. Needs ``pip install "llm-marl[skyrl-gym]"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import skyrl_gym
from skyrl_gym.envs.base_text_env import BaseTextEnv, BaseTextEnvStepOutput, ConversationType

import llm_marl
from llm_marl.integrations import register_missing

__all__ = ["NAMESPACE", "SkyRLTextEnv", "register_envs"]

#: Prefix of the SkyRL-gym ids: ``"llm_marl:tldr_v0"``.
NAMESPACE = "llm_marl"


class SkyRLTextEnv(BaseTextEnv):  # type: ignore[misc]
    """The single-agent view of an llm-marl env behind SkyRL-gym's ``init``/``step`` API."""

    def __init__(
        self,
        env_config: Mapping[str, Any] | None = None,
        extras: Mapping[str, Any] | None = None,
        *,
        env_id: str,
    ) -> None:
        super().__init__()
        kwargs = dict(env_config or {})
        if kwargs.pop("single_agent", True) is not True:
            raise ValueError(
                "SkyRL-gym plays one model per conversation: the adapter uses the single-agent "
                "view; drop single_agent from env_config"
            )
        self.env = llm_marl.make(env_id, single_agent=True, **kwargs)
        self.agent: str = self.env.possible_agents[0]
        self.extras = dict(extras or {})
        self.max_turns = int(getattr(self.env, "num_turns", 1))

    def init(self, prompt: ConversationType) -> tuple[ConversationType, dict[str, Any]]:
        """Start the episode of ``extras["task_id"]``; returns the env's prompt as a message."""
        task_id = self.extras.get("task_id")
        options = {"task_id": task_id} if task_id is not None else None
        observations, infos = self.env.reset(seed=self.extras.get("seed", 0), options=options)
        self.turns = 0
        text = observations[self.agent]["text"]
        return [{"role": "user", "content": text}], dict(infos[self.agent])

    def step(self, action: str) -> BaseTextEnvStepOutput:
        """Score ``action``; the next turn's prompt comes back as a user message."""
        self.turns += 1
        observations, rewards, _, _, infos = self.env.step({self.agent: action})
        done = not self.env.agents
        next_prompt = (
            [] if done else [{"role": "user", "content": observations[self.agent]["text"]}]
        )
        return BaseTextEnvStepOutput(
            observations=next_prompt,
            reward=float(rewards[self.agent]),
            done=done,
            metadata=dict(infos[self.agent]),
            postprocessed_action=action,
        )

    def close(self) -> None:
        """Close the wrapped env."""
        self.env.close()


def register_envs(env_ids: list[str] | None = None) -> list[str]:
    """Register ``env_ids`` (default: every llm-marl env) in SkyRL-gym; returns the new ids.

    Ids already registered are left as they are, so calling this twice is harmless.
    """
    return register_missing(
        env_ids,
        lambda env_id: [f"{NAMESPACE}:{env_id}"],
        skyrl_gym.registry,
        lambda name, env_id: skyrl_gym.register(name, SkyRLTextEnv, kwargs={"env_id": env_id}),
    )
