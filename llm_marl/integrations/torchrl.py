"""TorchRL: llm-marl envs as ``torchrl.envs.PettingZooWrapper`` envs.

TorchRL builds one tensor spec per ``infos`` key from the first ``reset`` and expects the same
numeric keys on every ``step``. llm-marl infos carry strings (task ids, sandbox status), nested
dicts (reward terms) and keys that only appear after a step, so :class:`NumericInfos` turns them
into one fixed set of flat float keys (``"reward_terms.rouge"``), filling a missing key with ``0.0``
and dropping text. The one string kept, as a number, is the coding envs' ``sandbox_status``:
``"sandbox_error"`` (``1.0`` when the code sandbox itself failed to judge the step, ``0.0``
otherwise). A step with ``sandbox_error == 1`` has a reward that means nothing: drop it from
training (llm-marl's trainers drop the task), do not learn from it. Observations and actions stay
strings (TorchRL ``NonTensor`` specs), so a TorchRL policy is any module that writes a string
``action`` per agent; TorchRL's wrapper indexes actions as arrays, so :func:`torchrl_env` reads them
as text instead.

>>> from llm_marl.integrations.torchrl import torchrl_env
>>> env = torchrl_env("tldr_v0")            # a TorchRL EnvBase, one group per agent
>>> rollout = env.rollout(3)                # random string actions

Needs ``pip install "llm-marl[integrations]"`` (torchrl).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from typing import Any

from pettingzoo import ParallelEnv
from pettingzoo.utils import BaseParallelWrapper

import llm_marl
from llm_marl.env_protocol import SANDBOX_ERROR

__all__ = ["NumericInfos", "flat_numeric_infos", "probe_info_keys", "torchrl_env"]


def flat_numeric_infos(info: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers in ``info`` as floats, nested dicts flattened to ``"outer.inner"`` keys.

    Booleans become ``0.0``/``1.0``; strings and other non-numbers are dropped, except a
    top-level ``sandbox_status`` (the coding envs'), which becomes ``"sandbox_error"``: ``1.0``
    when it is ``"sandbox_error"`` (the step's reward means nothing), else ``0.0``.
    """
    flat: dict[str, float] = {}
    for key, value in info.items():
        name = f"{prefix}{key}"
        if not prefix and key == "sandbox_status":
            flat["sandbox_error"] = float(value == SANDBOX_ERROR)
        elif isinstance(value, Mapping):
            flat.update(flat_numeric_infos(value, prefix=f"{name}."))
        elif isinstance(value, bool | int | float):
            flat[name] = float(value)
        elif hasattr(value, "item") and getattr(value, "size", 0) == 1:  # numpy scalars
            item = value.item()
            if isinstance(item, bool | int | float):
                flat[name] = float(item)
    return flat


def probe_info_keys(env: ParallelEnv, seed: int = 0) -> list[str]:
    """The numeric info keys ``env`` emits at reset and on every step of one episode.

    Plays one episode of empty answers on a copy of ``env``, so ``env`` itself is untouched.
    """
    probe = copy.deepcopy(env)
    keys: set[str] = set()
    _, infos = probe.reset(seed=seed)
    keys.update(k for info in infos.values() for k in flat_numeric_infos(info))
    while probe.agents:
        *_, infos = probe.step({agent: "" for agent in probe.agents})
        keys.update(k for info in infos.values() for k in flat_numeric_infos(info))
    probe.close()
    return sorted(keys)


class NumericInfos(BaseParallelWrapper):
    """A PettingZoo wrapper whose ``infos`` hold the same flat float keys at reset and step.

    ``keys`` fixes the schema; by default it is every numeric key seen in one probe episode
    (:func:`probe_info_keys`). A key an info lacks reads ``0.0``; a key outside the schema is
    dropped. The wrapped env's own infos stay available as ``raw_infos``.
    """

    def __init__(self, env: ParallelEnv, keys: Iterable[str] | None = None) -> None:
        super().__init__(env)
        self.info_keys: tuple[str, ...] = tuple(probe_info_keys(env) if keys is None else keys)
        self.raw_infos: dict[str, dict[str, Any]] = {}

    def _numeric(self, infos: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float]]:
        self.raw_infos = {agent: dict(info) for agent, info in infos.items()}
        out: dict[str, dict[str, float]] = {}
        for agent, info in infos.items():
            flat = flat_numeric_infos(info)
            out[agent] = {k: flat.get(k, 0.0) for k in self.info_keys}
            if any(math.isnan(v) for v in out[agent].values()):
                raise ValueError(f"infos of agent {agent!r} hold NaN: {info}")
        return out

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Reset the wrapped env; its infos come back numeric."""
        observations, infos = self.env.reset(seed=seed, options=options)
        return observations, dict(self._numeric(infos))

    def step(self, actions: dict[str, Any]) -> tuple[Any, Any, Any, Any, Any]:
        """Step the wrapped env; its infos come back numeric."""
        observations, rewards, terminations, truncations, infos = self.env.step(actions)
        return observations, rewards, terminations, truncations, self._numeric(infos)


def _text_actions(group_action: Any, agents: list[str]) -> dict[str, str]:
    """One ``str`` per agent from a group's ``NonTensorData``/``NonTensorStack`` of actions."""
    if group_action is None:
        raise ValueError(f"no action for agents {agents}: the policy must write (group, 'action')")
    texts = group_action.tolist()  # (n_agents,) strings
    if len(texts) != len(agents) or not all(isinstance(t, str) for t in texts):
        raise TypeError(
            f"the actions of agents {agents} must be one string each, got {texts!r}; write a "
            "NonTensorStack of strings at (group, 'action')"
        )
    return dict(zip(agents, texts, strict=True))


def torchrl_env(env: str | ParallelEnv, **kwargs: Any) -> Any:
    """A ``torchrl.envs.PettingZooWrapper`` around ``env`` (an id or a built env).

    Keyword arguments go to :func:`llm_marl.make` when ``env`` is an id. The wrapper uses
    ``return_state=False`` (the envs have no global state) and ``use_mask=True`` (agents leave
    the episode at its end); ``categorical_actions`` does not apply to text actions.
    """
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper

    class TextPettingZooWrapper(PettingZooWrapper):  # type: ignore[misc]
        """``PettingZooWrapper`` whose parallel step passes text actions through."""

        def _step_parallel(self, tensordict: Any) -> Any:
            actions: dict[str, str] = {}
            for group, agents in self.group_map.items():
                actions.update(_text_actions(tensordict.get((group, "action")), agents))
            return self._env.step(actions)

    built = llm_marl.make(env, **kwargs) if isinstance(env, str) else env
    if kwargs and not isinstance(env, str):
        raise TypeError(f"keyword arguments {sorted(kwargs)} apply to an env id, not a built env")
    return TextPettingZooWrapper(NumericInfos(built), return_state=False, use_mask=True)
