"""A Gymnasium single-agent view of any llm-marl env: ``gymnasium.make("llm_marl/tldr_v0")``.

The view builds the registered env with ``single_agent=True`` (one agent writes every part),
observes the agent's prompt as a plain ``str`` and acts with a ``str``. The episode ends with
``terminated=True`` after the env's last turn, a fixed horizon (RL libraries bootstrap from the
next state after a truncation, which is wrong there); ``truncated`` is left to a real time limit
such as ``gymnasium.wrappers.TimeLimit``. ``info`` is the agent's infos, with the same keys at
reset and at every step.

Importing this module registers every llm-marl env with Gymnasium's registry as
``llm_marl/<env_id>``; call :func:`register_envs` again after registering envs of your own::

    import gymnasium
    import llm_marl.integrations.gymnasium  # registers llm_marl/tldr_v0, ...

    env = gymnasium.make("llm_marl/tldr_v0", num_turns=2)
    prompt, info = env.reset(seed=0)
    prompt, reward, terminated, truncated, info = env.step("[PART 1]\\n...\\n[PART 2]\\n...")

``gymnasium.make`` adds Gymnasium's usual wrappers; :class:`GymnasiumEnv` itself is the plain
env. Vector envs work: ``gymnasium.make_vec("llm_marl/tldr_v0", 4)`` and ``AsyncVectorEnv``
with shared memory (prompts are stored as Unicode code points, see :mod:`llm_marl.spaces`).

Sandbox failures: a coding env's ``info["sandbox_status"]`` is ``"sandbox_error"`` when the code
sandbox itself failed to judge the step's program; that step's ``reward`` means nothing, so drop
it (llm-marl's trainers drop the task), do not learn from it as a low reward.
"""

from __future__ import annotations

from typing import Any

import gymnasium
from gymnasium import spaces
from pettingzoo import ParallelEnv

import llm_marl

__all__ = ["NAMESPACE", "GymnasiumEnv", "register_envs"]

#: Gymnasium's namespace of the llm-marl envs: ``llm_marl/<env_id>``.
NAMESPACE = "llm_marl"


class GymnasiumEnv(gymnasium.Env[str, str]):
    """The single-agent view of the llm-marl env ``env_id`` as a ``gymnasium.Env``.

    Keyword arguments go to ``llm_marl.make(env_id, single_agent=True, ...)``. Or wrap an env
    you built (``env=...``, with exactly one possible agent; ``render_mode`` is then its own).
    """

    # render_fps only quiets Gymnasium's checker: text has no frame rate.
    metadata: dict[str, Any] = {"render_modes": ["ansi", "human"], "render_fps": 1}  # noqa: RUF012

    def __init__(
        self,
        env_id: str | None = None,
        *,
        env: ParallelEnv | None = None,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        if (env_id is None) == (env is None):
            raise ValueError(
                "GymnasiumEnv needs an env id (GymnasiumEnv('tldr_v0')) or a built env "
                "(GymnasiumEnv(env=...)), not both and not neither"
            )
        if env is None:
            assert env_id is not None
            kwargs.setdefault("single_agent", True)
            env = llm_marl.make(env_id, render_mode=render_mode, **kwargs)
        elif kwargs or render_mode is not None:
            raise ValueError(
                f"GymnasiumEnv(env=...) takes no env arguments ({sorted(kwargs)} given; "
                "render_mode included): build the env with them instead"
            )
        if len(env.possible_agents) != 1:
            raise ValueError(
                f"the Gymnasium view needs a single-agent env, got agents {env.possible_agents}: "
                "build it with single_agent=True"
            )
        self.env = env
        self.agent = env.possible_agents[0]
        self.render_mode = getattr(env, "render_mode", None)
        self.metadata = {**self.metadata, **getattr(env, "metadata", {}), "render_fps": 1}
        self._text_key = _text_key(env.observation_space(self.agent))
        space = env.observation_space(self.agent)
        self.observation_space = space[self._text_key] if self._text_key else space
        self.action_space = env.action_space(self.agent)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start an episode; ``options={"task_id": ...}`` picks the task."""
        super().reset(seed=seed)  # seeds self.np_random, as Gymnasium expects; unused here
        observations, infos = self.env.reset(seed=seed, options=options)
        return self._observation(observations), infos[self.agent]

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Play ``action`` (the agent's whole answer); ``terminated`` after the last turn."""
        observations, rewards, terminations, truncations, infos = self.env.step(
            {self.agent: action}
        )
        return (
            self._observation(observations),
            float(rewards[self.agent]),
            bool(terminations[self.agent]),
            bool(truncations[self.agent]),
            infos[self.agent],
        )

    def render(self) -> str | None:  # type: ignore[override]
        """The episode so far: text in ``"ansi"`` mode, printed in ``"human"`` mode."""
        return self.env.render()

    def close(self) -> None:
        """Close the wrapped env."""
        self.env.close()

    def _observation(self, observations: dict[str, Any]) -> str:
        observation = observations[self.agent]
        return observation[self._text_key] if self._text_key else observation


def _text_key(space: spaces.Space[Any]) -> str | None:
    """``"text"`` for a ``Dict({"text": Text})`` observation space, ``None`` for a ``Text``."""
    if isinstance(space, spaces.Text):
        return None
    if isinstance(space, spaces.Dict) and len(space) == 1 and "text" in space.spaces:
        return "text"
    raise ValueError(
        f"the Gymnasium view observes text: a Text space or Dict({{'text': Text}}), got {space}"
    )


def register_envs() -> list[str]:
    """Register every llm-marl env with Gymnasium as ``llm_marl/<env_id>``; the ids registered.

    Idempotent: call it again after ``llm_marl.register`` to add your own envs.
    """
    added = []
    for env_id in llm_marl.list_envs():
        gym_id = f"{NAMESPACE}/{env_id}"
        if gym_id not in gymnasium.registry:
            gymnasium.register(
                gym_id,
                entry_point=f"{__name__}:GymnasiumEnv",
                kwargs={"env_id": env_id},
                disable_env_checker=False,
            )
            added.append(gym_id)
    return added


register_envs()
