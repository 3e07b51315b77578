"""TextArena: every llm-marl env in TextArena's registry, its team as TextArena players.

:func:`register_envs` registers each env id as ``"llm_marl:<env_id>"`` (and a
``"...-raw"`` version without wrappers, as TextArena does for its own games). TextArena is
turn-based, so a turn of the simultaneous llm-marl env becomes one move per player in agent
order (player ``i`` is ``env.possible_agents[i]``); nobody sees a partner's answer before the
env's next turn shows it. Rewards are summed over the episode, one per player.

>>> import textarena as ta
>>> from llm_marl.integrations.textarena import register_envs
>>> register_envs()
>>> env = ta.make("llm_marl:tldr_v0")
>>> env.reset(num_players=2, seed=0)
>>> done = False
>>> while not done:
...     player_id, observation = env.get_observation()   # the player's prompt, a str
...     done, info = env.step(action="my answer")
>>> rewards, game_info = env.close()

The raw env's observations are TextArena message lists; the default wrapper
(:class:`PromptObservationWrapper`) gives the player's current prompt as one string (prompts
of later turns already hold the episode so far, so TextArena's ``LLMObservationWrapper``
would repeat them).

Sandbox failures: the last player's ``step`` returns ``{"infos": infos}``, the env's infos; when
the code sandbox itself failed to judge a turn (a coding env's ``infos[agent]["sandbox_status"]
== "sandbox_error"``), that turn's reward means nothing, and ``game_info[player]["sandbox_error"]``
(from ``close()``) is ``True`` for the episode: drop its summed reward, do not learn from it.
Needs ``pip install "llm-marl[textarena]"``.
"""

from __future__ import annotations

from typing import Any

import textarena as ta
from textarena.envs.registration import ENV_REGISTRY

import llm_marl
from llm_marl.env_protocol import sandbox_failed
from llm_marl.integrations import register_missing

__all__ = ["NAMESPACE", "PromptObservationWrapper", "TextArenaEnv", "register_envs"]

#: Prefix of the TextArena ids: ``"llm_marl:tldr_v0"``.
NAMESPACE = "llm_marl"


class TextArenaEnv(ta.Env):  # type: ignore[misc]
    """An llm-marl env as a turn-based TextArena game, one player per agent."""

    def __init__(self, env_id: str, **env_kwargs: Any) -> None:
        self.env = llm_marl.make(env_id, **env_kwargs)
        self.agents: list[str] = list(self.env.possible_agents)
        self.current_player_id = 0
        self.done = True
        self.rewards: dict[int, float] = {}
        self.game_info: dict[int, dict[str, Any]] = {}
        self._prompts: dict[int, str] = {}
        self._moves: dict[str, str] = {}

    def reset(self, num_players: int, seed: int | None = None) -> None:
        """Start an episode; ``num_players`` must equal the env's team size."""
        if num_players != len(self.agents):
            raise ValueError(
                f"num_players={num_players}, but this env has {len(self.agents)} agents "
                f"{self.agents}: reset(num_players={len(self.agents)})"
            )
        observations, _ = self.env.reset(seed=seed)
        self._show(observations)
        self.current_player_id, self.done, self._moves = 0, False, {}
        self.rewards = {pid: 0.0 for pid in range(num_players)}
        self.game_info = {
            pid: {"role": agent, "invalid_move": False, "turn_count": 0, "sandbox_error": False}
            for pid, agent in enumerate(self.agents)
        }

    def _show(self, observations: dict[str, Any]) -> None:
        self._prompts = {
            pid: observations[agent]["text"]
            for pid, agent in enumerate(self.agents)
            if agent in observations
        }

    def get_observation(self) -> tuple[int, list[tuple[int, str, ta.ObservationType]]]:
        """The current player and its prompt as a one-message TextArena observation."""
        prompt = self._prompts.get(self.current_player_id, "")
        return self.current_player_id, [(ta.GAME_ID, prompt, ta.ObservationType.PROMPT)]

    def step(self, action: str) -> tuple[bool, dict[str, Any]]:
        """The current player's answer; the last player's move plays the env's turn."""
        if self.done:
            raise ValueError("the episode has ended: call reset(num_players) before step()")
        if not isinstance(action, str):
            raise TypeError(f"action must be a str (the LLM's answer), got {type(action).__name__}")
        player = self.current_player_id
        self._moves[self.agents[player]] = action
        self.game_info[player]["turn_count"] += 1
        if player + 1 < len(self.agents):
            self.current_player_id = player + 1
            return False, {}
        observations, rewards, _, truncations, infos = self.env.step(self._moves)
        failed = sandbox_failed(infos)
        for pid, agent in enumerate(self.agents):
            self.rewards[pid] += float(rewards[agent])
            self.game_info[pid]["sandbox_error"] |= failed
        self._show(observations)
        self.current_player_id, self._moves = 0, {}
        self.done = not self.env.agents
        if self.done:
            for pid, agent in enumerate(self.agents):
                self.game_info[pid]["reason"] = (
                    "time limit" if truncations[agent] else "the task's last turn"
                )
        return self.done, {"infos": infos}

    def close(self) -> tuple[dict[int, float], dict[int, dict[str, Any]]]:
        """Each player's total reward and its game info, as TextArena's ``close`` returns."""
        self.env.close()
        return dict(self.rewards), self.game_info


class PromptObservationWrapper(ta.ObservationWrapper):  # type: ignore[misc]
    """Observations as the player's current prompt, one ``str``."""

    def observation(self, player_id: int, observation: Any) -> str:
        """The text of the last message (the prompt) of ``observation``."""
        return str(observation[-1][1]) if observation else ""


def register_envs(env_ids: list[str] | None = None) -> list[str]:
    """Register ``env_ids`` (default: every llm-marl env) in TextArena; returns the new ids.

    Ids already registered are left as they are, so calling this twice is harmless.
    """

    def register(name: str, env_id: str) -> None:
        wrappers = None if name.endswith("-raw") else [PromptObservationWrapper]
        ta.register(name, TextArenaEnv, default_wrappers=wrappers, env_id=env_id)

    return register_missing(
        env_ids,
        lambda env_id: [f"{NAMESPACE}:{env_id}", f"{NAMESPACE}:{env_id}-raw"],
        ENV_REGISTRY,
        register,
    )
