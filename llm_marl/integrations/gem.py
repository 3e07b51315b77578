"""GEM: every llm-marl env in GEM's registry, as a GEM multi-agent env.

:func:`register_envs` registers each env id as ``"llm_marl:<env_id>"``; ``gem.make`` then
builds a :class:`GemMultiAgentEnv`, a ``gem.multiagent.MultiAgentEnv`` (GEM's own parallel,
PettingZoo-like API: dicts keyed by agent name, observations as prompt strings). Keyword
arguments of ``gem.make`` go to :func:`llm_marl.make`; ``single_agent=True`` gives the
single-agent view with one agent.

>>> import gem
>>> from llm_marl.integrations.gem import register_envs
>>> register_envs()
>>> env = gem.make("llm_marl:tldr_v0")
>>> observations, infos = env.reset(seed=0)     # {agent: prompt}
>>> while env.agents:
...     actions = {agent: "my answer" for agent in env.agents}
...     observations, rewards, terminations, truncations, infos = env.step(actions)

Importing this module leaves the root logger as it was (``import gem`` alone configures it
to print INFO messages).

Sandbox failures: the infos are the env's own, so a coding env's
``infos[agent]["sandbox_status"]`` is ``"sandbox_error"`` when the code sandbox itself failed to
judge the step; that step's rewards mean nothing: drop them, do not learn from them.
Needs ``pip install "llm-marl[gem]"``.
"""

from __future__ import annotations

import functools
import importlib
import logging
from types import ModuleType
from typing import Any

import llm_marl
from llm_marl.integrations import register_missing


def _import_gem() -> ModuleType:
    """Import gem without the ``logging.basicConfig(level=INFO)`` its ``__init__`` runs."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    module = importlib.import_module("gem")
    root.handlers[:] = handlers
    root.setLevel(level)
    return module


gem = _import_gem()

from gem.envs.registration import ENV_REGISTRY  # noqa: E402
from gem.multiagent import MultiAgentEnv  # noqa: E402

__all__ = ["NAMESPACE", "GemMultiAgentEnv", "register_envs"]

#: Prefix of the GEM ids: ``"llm_marl:tldr_v0"``.
NAMESPACE = "llm_marl"

Step = tuple[
    dict[str, str], dict[str, float], dict[str, bool], dict[str, bool], dict[str, dict[str, Any]]
]


class GemMultiAgentEnv(MultiAgentEnv):  # type: ignore[misc]
    """An llm-marl env behind GEM's ``MultiAgentEnv`` API."""

    def __init__(self, env_id: str, **env_kwargs: Any) -> None:
        super().__init__()
        self.env = llm_marl.make(env_id, **env_kwargs)
        self.possible_agents = list(self.env.possible_agents)
        self._prompts: dict[str, str] = {}

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """Start an episode (``options={"task_id": ...}`` picks the task)."""
        super().reset()  # GEM's bookkeeping: agents, terminations, cumulative rewards
        observations, infos = self.env.reset(seed=seed, options=options)
        self._prompts = {agent: obs["text"] for agent, obs in observations.items()}
        self.infos = {agent: dict(info) for agent, info in infos.items()}
        return dict(self._prompts), self.infos

    def observe(self, agent: str) -> str:
        """The current prompt of ``agent``."""
        return self._prompts.get(agent, "")

    def _process_actions(self, actions: dict[str, str]) -> Step:
        observations, rewards, terminations, truncations, infos = self.env.step(actions)
        self._prompts = {agent: obs["text"] for agent, obs in observations.items()}
        step: Step = (
            dict(self._prompts),
            {agent: float(r) for agent, r in rewards.items()},
            dict(terminations),
            dict(truncations),
            {agent: dict(info) for agent, info in infos.items()},
        )
        # GEM removes agents that are done from these dicts, so they hold copies.
        self.rewards, self.terminations, self.truncations = (
            dict(step[1]),
            dict(step[2]),
            dict(step[3]),
        )
        self.infos = {agent: dict(info) for agent, info in step[4].items()}
        return step

    def close(self) -> None:
        """Close the wrapped env."""
        self.env.close()


def register_envs(env_ids: list[str] | None = None) -> list[str]:
    """Register ``env_ids`` (default: every llm-marl env) in GEM; returns the new ids.

    Ids already registered are left as they are, so calling this twice is harmless.
    """
    # gem.register's first parameter is named env_id, so ours is bound in the partial.
    return register_missing(
        env_ids,
        lambda env_id: [f"{NAMESPACE}:{env_id}"],
        ENV_REGISTRY,
        lambda name, env_id: gem.register(name, functools.partial(GemMultiAgentEnv, env_id)),
    )
