"""What the trainers need from an env, as typed protocols and small readers (no torch).

Any PettingZoo ``ParallelEnv`` with text observations can be trained on; llm-marl's own envs
offer more, which the trainers use when it is there:

- :class:`TextParallelEnv`: ``possible_agents``, ``agents``, ``reset(seed=, options=)`` and
  ``step(actions)``; observations are a prompt ``str`` or ``{"text": str}``
  (:func:`observation_text`); actions are ``str``.
- ``infos[agent]["team_reward"]`` (float) and ``infos[agent]["reward_terms"]`` (name -> float),
  both optional: without them the team reward is the mean of the agents' rewards and there are
  no terms (:func:`team_outcome`).
- ``env.tasks`` (optional): a sequence of objects with a ``str`` ``task_id``, which
  ``reset(options={"task_id": ...})`` accepts (:func:`env_task_ids`, :class:`TaskLister`).
- ``env.num_turns`` (optional ``int``): the episode's horizon (:func:`env_num_turns`).
- The env factory (``llm_marl.make(env_id, **kwargs)``) accepts the keyword arguments of
  :class:`EnvOptions`: ``num_turns``, ``split``, ``reward_mode`` and ``single_agent``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

from llm_marl.checks import check_int

__all__ = [
    "SANDBOX_ERROR",
    "SANDBOX_OK",
    "EnvFactory",
    "EnvOptions",
    "HasNumTurns",
    "TaskLike",
    "TaskLister",
    "TextObservation",
    "TextParallelEnv",
    "env_num_turns",
    "env_task_ids",
    "observation_text",
    "sandbox_failed",
    "team_outcome",
]

#: ``infos[agent]["sandbox_status"]`` of the coding envs: the step's programs were judged, or
#: the code sandbox itself failed (the step's rewards then mean nothing).
SANDBOX_OK, SANDBOX_ERROR = "ok", "sandbox_error"

TextObservation = str | Mapping[str, str]
"""A prompt: the text itself, or ``{"text": prompt}`` (llm-marl envs)."""


@runtime_checkable
class TextParallelEnv(Protocol):
    """The PettingZoo parallel API, with text observations and ``str`` actions."""

    possible_agents: list[str]
    agents: list[str]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Observations (see :data:`TextObservation`) and infos of every agent."""
        ...

    def step(
        self, actions: dict[str, str]
    ) -> tuple[
        dict[str, Any],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        """Observations, rewards, terminations, truncations and infos of the live agents."""
        ...


@runtime_checkable
class TaskLike(Protocol):
    """One task of an env that lists them."""

    @property
    def task_id(self) -> str:
        """The id that ``reset(options={"task_id": ...})`` accepts."""
        ...


@runtime_checkable
class TaskLister(Protocol):
    """An env that lists its tasks (every llm-marl env does)."""

    @property
    def tasks(self) -> Sequence[TaskLike]:
        """The tasks of the env's split."""
        ...


@runtime_checkable
class HasNumTurns(Protocol):
    """An env that states its episode length."""

    @property
    def num_turns(self) -> int:
        """Turns per episode."""
        ...


class EnvOptions(TypedDict, total=False):
    """The keyword arguments the trainers pass to the env factory."""

    num_turns: int
    """Turns per episode (passed when not 1)."""
    split: str
    """``"test"`` for evaluation envs (passed when not ``"train"``)."""
    reward_mode: Literal["shared", "individual"]
    """``"individual"`` for independent learners (IGRPO)."""
    single_agent: bool
    """``True`` for the single-agent view (GRPO)."""


class EnvFactory(Protocol):
    """``factory(**options) -> env``, as ``llm_marl.make(env_id, **options)``."""

    def __call__(self, **options: Any) -> TextParallelEnv:
        """Build an env; see :class:`EnvOptions` for the options the trainers pass."""
        ...


def observation_text(observation: Any) -> str:
    """The prompt inside an observation: ``{"text": prompt}`` (llm-marl envs) or a plain str."""
    if isinstance(observation, Mapping) and isinstance(observation.get("text"), str):
        return str(observation["text"])
    if isinstance(observation, str):
        return observation
    raise TypeError(
        "the trainers need text observations: a str or a dict with a 'text' str, got "
        f"{type(observation).__name__}"
    )


def team_outcome(
    infos: Mapping[str, Any], rewards: Mapping[str, float]
) -> tuple[float, dict[str, float]]:
    """The team reward and reward terms of one step.

    ``infos[agent]["team_reward"]`` and ``["reward_terms"]`` of the first agent in ``rewards``
    when the env gives them, else the mean of the agents' rewards and no terms.
    """
    if not rewards:
        raise ValueError("team_outcome needs the rewards of at least one agent, got none")
    first = infos.get(next(iter(rewards)), {})
    team = float(first.get("team_reward", sum(rewards.values()) / len(rewards)))
    return team, {k: float(v) for k, v in first.get("reward_terms", {}).items()}


def sandbox_failed(infos: Mapping[str, Any]) -> bool:
    """True when any agent's ``infos[agent]["sandbox_status"]`` is ``"sandbox_error"``: the
    code sandbox could not judge a program of the step, so its rewards mean nothing. Envs
    without the key (the writing envs, users' envs) never fail this way."""
    return any(
        isinstance(info, Mapping) and info.get("sandbox_status") == SANDBOX_ERROR
        for info in infos.values()
    )


def env_task_ids(env: object) -> list[str] | None:
    """The env's task ids (``env.tasks[i].task_id``), or None when it does not list them
    (no ``tasks``, an empty list, or an id that is not a ``str``)."""
    tasks = getattr(env, "tasks", None)
    if tasks is None:
        return None
    ids = [getattr(task, "task_id", None) for task in tasks]
    if not ids or any(not isinstance(i, str) for i in ids):
        return None
    return [str(i) for i in ids]


def env_num_turns(env: object, default: int) -> int:
    """The env's ``num_turns``, or ``default`` when it has none; ``ValueError`` unless >= 1."""
    value = getattr(env, "num_turns", default)
    check_int("env.num_turns", value, 1)
    return int(value)
