"""The base class of every collaborative text environment: turns, rewards, seeding, bad input.

A subclass states its roles (two or more: a team of any size) and supplies four hooks:
``parse_record`` (a data record to a task), ``prompt`` (an agent's prompt for the next turn,
given the episode so far), ``score`` (the joint action to an :class:`Outcome`) and
``solo_prompt`` (the prompt of the single-agent view). It may also supply reference answers
(``reference_parts``), which :meth:`CollaborativeTextEnv.reference_actions` serves to the
conformance checks (:mod:`llm_marl.conformance`). Everything else (the PettingZoo parallel
API, reward modes, task sampling, train/test data, multi-turn episodes, validation of actions)
lives here once, for the writing and coding envs.
"""

from __future__ import annotations

import copy
import numbers
import os
import re
from abc import ABCMeta, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Generic, Literal, TypeVar

import numpy as np
from gymnasium import logger, spaces
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv

from llm_marl.checks import check_int
from llm_marl.data import load_records
from llm_marl.episode import Outcome, Task, TurnRecord
from llm_marl.spaces import UnicodeText, text_observation_space

__all__ = [
    "CollaborativeTextEnv",
    "Observation",
    "part_marker",
]

Observation = dict[str, str]
RewardMode = Literal["shared", "individual"]
REWARD_MODES: tuple[str, ...] = ("shared", "individual")
#: Characters allowed for the review text that multi-turn prompts add besides the answers.
REVIEW_ALLOWANCE = 1024
TaskT = TypeVar("TaskT", bound=Task)


def part_marker(index: int) -> str:
    """The line that opens part ``index`` (1-based) of a single-agent answer: ``[PART 2]``."""
    return f"[PART {index}]"


_MARKER = re.compile(r"\[PART (\d+)\]")


def _zeroed(value: Any) -> Any:
    """``value`` with every leaf set to the zero of its type: dict keys kept, lists and strings
    emptied, numbers 0, flags False, anything else None."""
    if isinstance(value, Mapping):
        return {key: _zeroed(item) for key, item in value.items()}
    if isinstance(value, str | bytes | list | tuple):
        return type(value)()
    if isinstance(value, bool | np.bool_ | numbers.Number):
        kind: Any = type(value)
        return kind(0)
    return None


class CollaborativeTextEnv(ParallelEnv[str, Observation, str], Generic[TaskT], metaclass=ABCMeta):
    """A PettingZoo parallel env in which LLM agents answer text prompts and share a reward.

    Agents are named ``<role>_<index>``; observations are ``{"text": prompt}``; actions are
    strings (whole LLM responses). With ``single_agent=True`` one agent, ``<solo_role>_0``,
    writes every part in one answer (parts opened by :func:`part_marker` lines, or split by
    :meth:`split_solo`) and gets the team reward.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "name": "collaborative_text",
        "render_modes": ["ansi", "human"],
        "is_parallelizable": True,
    }
    roles: ClassVar[tuple[str, ...]]
    """Role of each team agent, in order."""
    solo_role: ClassVar[str] = "writer"
    """Role of the single agent in the single-agent view."""
    bundled_data: ClassVar[str]
    """Name of the bundled sample under ``llm_marl/data/samples/``."""
    hub_dataset: ClassVar[str | None] = None
    """Hub id of the full data set, when there is one."""

    def __init__(
        self,
        *,
        data: str | os.PathLike[str] | None = None,
        split: str = "train",
        max_tasks: int | None = None,
        num_turns: int = 1,
        max_cycles: int | None = None,
        reward_mode: RewardMode = "shared",
        single_agent: bool = False,
        max_action_chars: int = 8000,
        max_prompt_chars: int = 65536,
        render_mode: str | None = None,
    ) -> None:
        """Build the env.

        Args:
            data: ``None``/``"bundled"`` for the bundled sample, a hub id or a local path.
            split: ``"train"`` or ``"test"`` (held-out tasks); a hub data set may offer more.
            max_tasks: keep only the first tasks of the split.
            num_turns: turns per episode; later turns see feedback and the partner's answer.
                The episode *terminates* after the last turn (a fixed horizon, not a time
                limit: the env never truncates).
            max_cycles: PettingZoo's name for ``num_turns``; when given it wins over
                ``num_turns``, so that PettingZoo tools setting it work on any preset env.
            reward_mode: ``"shared"`` (team reward for all) or ``"individual"`` (own share).
            single_agent: one agent writes all parts in one answer.
            max_action_chars: longer actions are cut to this length (flagged in infos).
            max_prompt_chars: bound of the observation space.
            render_mode: ``"ansi"`` (``render()`` returns text), ``"human"`` (prints) or None.
        """
        roles = getattr(type(self), "roles", None)
        if (
            not isinstance(roles, tuple)
            or len(roles) < 2
            or not all(isinstance(r, str) and r for r in roles)
        ):
            raise ValueError(
                f"{type(self).__name__}.roles must be a tuple of two or more role names "
                f"(for example ('concise', 'detailed')), got {roles!r}"
            )
        if max_cycles is not None:
            check_int("max_cycles", max_cycles, 1)
            num_turns = max_cycles
        check_int("num_turns", num_turns, 1)
        check_int("max_action_chars", max_action_chars, 1)
        check_int("max_prompt_chars", max_prompt_chars, 1)
        if max_tasks is not None:
            check_int("max_tasks", max_tasks, 1)
        if reward_mode not in REWARD_MODES:
            raise ValueError(f"reward_mode must be one of {REWARD_MODES}, got {reward_mode!r}")
        if single_agent and reward_mode == "individual":
            raise ValueError(
                "reward_mode='individual' needs a team; the single-agent view has one agent, "
                "which gets the team reward: use reward_mode='shared'"
            )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"got {render_mode!r}"
            )
        if not isinstance(split, str) or not split:
            raise ValueError(f"split must be a non-empty string such as 'train', got {split!r}")
        self.split = split
        self.num_turns = num_turns
        self.reward_mode: RewardMode = reward_mode
        self.single_agent = single_agent
        self.max_action_chars = max_action_chars
        self.max_prompt_chars = max_prompt_chars
        self.render_mode = render_mode
        self.data_source = "bundled" if data is None else str(data)
        records = self.load_task_records(data, split, max_tasks)
        self.tasks: Sequence[TaskT] = [
            self._parse_named(r, i, split) for i, r in enumerate(records)
        ]
        self._task_index = {task.task_id: i for i, task in enumerate(self.tasks)}
        if len(self._task_index) != len(self.tasks):
            raise ValueError(f"task ids are not unique in split {split!r} of {self.data_source}")

        self.team_agents: list[str] = [f"{role}_{i}" for i, role in enumerate(self.roles)]
        self.possible_agents = [f"{self.solo_role}_0"] if single_agent else list(self.team_agents)
        self.agents: list[str] = []
        self.observation_spaces = {
            a: text_observation_space(max_prompt_chars) for a in self.possible_agents
        }
        self.action_spaces: dict[str, spaces.Space[Any]] = {
            a: UnicodeText(max_action_chars) for a in self.possible_agents
        }
        self.np_random, self.np_random_seed = seeding.np_random()
        self._task: TaskT | None = None
        self._history: tuple[TurnRecord, ...] = ()
        self._info_template: dict[str, dict[str, Any]] | None = None
        self._check_prompt_budget()

    def _check_prompt_budget(self) -> None:
        """Fail here rather than mid-episode when prompts could outgrow ``max_prompt_chars``."""
        first_turn = max(
            len(text) for task in self.tasks for text in self._prompts(task, ()).values()
        )
        # Later turns show answers back: every part (solo) or own + partners' answers (team).
        shown = self.max_action_chars * (1 if self.single_agent else len(self.team_agents))
        later = shown + REVIEW_ALLOWANCE if self.num_turns > 1 else 0
        if first_turn + later > self.max_prompt_chars:
            raise ValueError(
                f"max_prompt_chars={self.max_prompt_chars} is too small: the longest first-turn "
                f"prompt has {first_turn} characters and later turns add up to {later}; pass "
                f"max_prompt_chars >= {first_turn + later} (or a smaller max_action_chars)"
            )

    # ----------------------------------------------------------------- hooks for subclasses
    def load_task_records(
        self, data: str | os.PathLike[str] | None, split: str, max_tasks: int | None
    ) -> list[dict[str, Any]]:
        """The data records of ``split``; override for data that is not a bundled JSONL sample."""
        return load_records(data, split=split, bundled=self.bundled_data, limit=max_tasks)

    def record_error(self, index: int, why: str, task_id: object = None) -> ValueError:
        """The error that refuses record ``index`` (``task_id``) of :attr:`data_source`: it
        names the file, so a user with several data files knows which one to fix."""
        name = f"record {index}" if task_id in (None, "") else f"record {index} ({task_id})"
        return ValueError(f"{name} of {self.data_source}: {why}")

    def _parse_named(self, record: Mapping[str, Any], index: int, split: str) -> TaskT:
        """:meth:`parse_record`, whose ``ValueError`` names the data source if it did not."""
        try:
            return self.parse_record(record, index, split)
        except ValueError as err:
            if self.data_source in str(err):
                raise
            raise self.record_error(index, str(err)) from err

    @abstractmethod
    def parse_record(self, record: Mapping[str, Any], index: int, split: str) -> TaskT:
        """Turn one data record (bundled, local or hub schema) into a task."""

    @abstractmethod
    def prompt(self, task: TaskT, agent: str, history: Sequence[TurnRecord]) -> str:
        """Prompt of team agent ``agent`` for the turn after ``history``."""

    @abstractmethod
    def solo_prompt(self, task: TaskT, history: Sequence[TurnRecord]) -> str:
        """Prompt of the single agent, asking for every part in one answer."""

    @abstractmethod
    def score(self, task: TaskT, actions: Mapping[str, str]) -> Outcome:
        """Score the team's joint answer (one text per team agent)."""

    def reference_parts(self, task: TaskT, turn: int) -> Sequence[str]:
        """Reference answers of the team agents (role order) on ``task`` at turn ``turn``.

        Override with answers that reach every reward level (``stopped_at_level`` 0); they
        drive the conformance and determinism checks. The default has none.
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no reference answers: override reference_parts(task, "
            "turn) to return one answer per role; the conformance checks then sample actions"
        )

    def join_solo(self, parts: Sequence[str]) -> str:
        """One single-agent answer holding ``parts`` (the inverse of :meth:`split_solo`)."""
        return "\n".join(f"{part_marker(k + 1)}\n{part}" for k, part in enumerate(parts))

    def reference_actions(self) -> dict[str, str]:
        """Reference answers for the current task and turn, one per live agent.

        They reach every level of the env's reward; the single-agent view gets the team's
        parts joined by :meth:`join_solo`. Raises ``NotImplementedError`` for an env without
        references (see :meth:`reference_parts`) and ``ValueError`` outside an episode.
        """
        task = self._current_task()
        if not self.agents:
            raise ValueError("the episode has ended: call reset() before reference_actions()")
        parts = list(self.reference_parts(task, len(self._history)))
        if len(parts) != len(self.team_agents):
            raise ValueError(
                f"reference_parts gave {len(parts)} answers for the {len(self.team_agents)} "
                f"roles {self.roles} of {type(self).__name__}"
            )
        if self.single_agent:
            return {self.possible_agents[0]: self.join_solo(parts)}
        return dict(zip(self.team_agents, parts, strict=True))

    def split_solo(self, text: str) -> list[str]:
        """Split a single-agent answer into one part per role at its ``[PART k]`` lines.

        Text before ``[PART 2]`` is part 1 (a leading ``[PART 1]`` is dropped); a missing part
        is empty, so it scores as an empty answer.
        """
        parts = [""] * len(self.roles)
        current, start = 0, 0
        for match in _MARKER.finditer(text):
            index = int(match.group(1)) - 1
            if index == current + 1 and index < len(parts):
                parts[current] = text[start : match.start()]
                current, start = index, match.end()
            elif index == 0 and current == 0 and not text[: match.start()].strip():
                start = match.end()
        parts[current] = text[start:]
        return [p.strip() for p in parts]

    # ----------------------------------------------------------------- PettingZoo API
    def observation_space(self, agent: str) -> spaces.Space[Any]:
        """The observation space of ``agent`` (the same object on every call)."""
        return self.observation_spaces[self._known(agent)]

    def action_space(self, agent: str) -> spaces.Space[Any]:
        """The action space of ``agent`` (the same object on every call)."""
        return self.action_spaces[self._known(agent)]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Observation], dict[str, dict[str, Any]]]:
        """Start an episode on a task drawn with the env's seeded generator.

        ``options={"task_id": ...}`` picks the task instead; other option keys are ignored.
        ``seed`` is a non-negative int (not a bool) or None; ``options`` a dict or None.
        A failing reset (bad argument, unknown task id, prompt too long) leaves the env as it was.
        """
        _check_reset_arguments(seed, options)
        rng, rng_seed = self.np_random, self.np_random_seed
        if seed is not None:
            rng, rng_seed = seeding.np_random(int(seed) if isinstance(seed, np.integer) else seed)
        task_id = (options or {}).get("task_id")
        if task_id is None:
            rng = copy.deepcopy(rng) if seed is None else rng
            task = self.tasks[int(rng.integers(len(self.tasks)))]
        else:
            task = self.tasks[self._index_of(task_id)]
        observations = self._observations(task, ())
        self.np_random, self.np_random_seed = rng, rng_seed
        self._task, self._history = task, ()
        self.agents = list(self.possible_agents)
        return observations, self._reset_infos(task)

    def _index_of(self, task_id: Any) -> int:
        if not isinstance(task_id, str) or task_id not in self._task_index:
            examples = list(self._task_index)[:3]
            raise ValueError(
                f"unknown task_id {task_id!r} in split {self.split!r} of {self.data_source}; "
                f"task ids are strings such as {examples} (see env.tasks)"
            )
        return self._task_index[task_id]

    def step(
        self, actions: Mapping[str, str]
    ) -> tuple[
        dict[str, Observation],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        """Score the joint action of every live agent and move to the next turn.

        Raises ``ValueError``/``TypeError`` naming the agent for a missing, unknown or non-str
        action, and ``ValueError`` after the episode ended; the env is then left unchanged.
        """
        texts = self._validated(actions)
        task = self._current_task()
        cut = {a: text[: self.max_action_chars] for a, text in texts.items()}
        team_actions = self._team_actions(cut)
        outcome = self.score(task, team_actions)
        history = (*self._history, TurnRecord(team_actions, outcome))
        done = len(history) >= self.num_turns
        agents = list(self.agents)
        observations = self._observations(task, history)
        rewards = {a: self._reward(a, outcome) for a in agents}
        turn = len(history) - 1
        infos = {a: self._info(a, task, turn, outcome, texts[a], team_actions) for a in agents}
        # The last turn ends a fixed-horizon task: termination (nothing to bootstrap from).
        terminations = dict.fromkeys(agents, done)
        truncations = dict.fromkeys(agents, False)
        # Commit only now: an error above leaves the env as it was.
        self._history = history
        if done:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return observations, rewards, terminations, truncations, infos

    def render(self) -> str | None:
        """The episode so far: returned as text (``"ansi"``) or printed (``"human"``, which
        returns ``None``, as PettingZoo and Gymnasium expect); ``None`` without a render mode,
        with Gymnasium's warning, as PettingZoo's and Gymnasium's own envs give."""
        if self.render_mode is None:
            logger.warn(
                "render() was called without a render_mode, so it renders nothing: build the "
                "env with render_mode='ansi' (text returned) or 'human' (printed)",
                stacklevel=2,
            )
            return None
        text = self._render_text()
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def _render_text(self) -> str:
        task_id = self._task.task_id if self._task else "-"
        lines = [f"== {self.metadata['name']} task {task_id} =="]
        for turn, record in enumerate(self._history):
            lines.append(f"-- turn {turn}: team reward {record.outcome.team:.3f}")
            lines.extend(f"[{agent}] {text}" for agent, text in record.actions.items())
        return "\n".join(lines)

    def close(self) -> None:
        """Nothing to release."""

    # ----------------------------------------------------------------- internals
    @property
    def history(self) -> Sequence[TurnRecord]:
        """The turns played so far in this episode."""
        return self._history

    @property
    def task(self) -> TaskT:
        """The task of the current episode."""
        return self._current_task()

    def _current_task(self) -> TaskT:
        if self._task is None:
            raise ValueError("no episode yet: call reset() before step()")
        return self._task

    def _known(self, agent: str) -> str:
        if agent not in self.possible_agents:
            raise ValueError(f"unknown agent {agent!r}; agents are {self.possible_agents}")
        return agent

    def _validated(self, actions: Mapping[str, str]) -> dict[str, str]:
        if not isinstance(actions, Mapping):
            raise TypeError(f"actions must be a dict of agent -> str, got {type(actions).__name__}")
        if not self.agents:
            raise ValueError(
                f"step() got actions for {sorted(map(str, actions))} but no agent is live: the "
                "episode has ended (or never started); call reset() first"
            )
        for agent in actions:
            if agent not in self.agents:
                why = "has left the episode" if agent in self.possible_agents else "is unknown"
                raise ValueError(f"agent {agent!r} {why}; live agents are {self.agents}")
        for agent in self.agents:
            if agent not in actions:
                raise ValueError(f"missing action for agent {agent!r}; every live agent acts")
            if not isinstance(actions[agent], str):
                raise TypeError(
                    f"action of agent {agent!r} must be a str (the whole LLM response), "
                    f"got {type(actions[agent]).__name__}"
                )
        # str.__str__ gives the exact characters even for a str subclass overriding __str__.
        return {a: str.__str__(actions[a]) for a in self.agents}

    def _team_actions(self, cut: Mapping[str, str]) -> dict[str, str]:
        if not self.single_agent:
            return dict(cut)
        parts = self.split_solo(cut[self.possible_agents[0]])
        return dict(zip(self.team_agents, parts, strict=True))

    def _prompts(self, task: TaskT, history: Sequence[TurnRecord]) -> dict[str, str]:
        if self.single_agent:
            return {self.possible_agents[0]: self.solo_prompt(task, history)}
        return {a: self.prompt(task, a, history) for a in self.possible_agents}

    def _observations(self, task: TaskT, history: Sequence[TurnRecord]) -> dict[str, Observation]:
        prompts = self._prompts(task, history)
        for agent, text in prompts.items():
            if len(text) > self.max_prompt_chars:
                raise ValueError(
                    f"the prompt of agent {agent!r} on task {task.task_id!r} has {len(text)} "
                    f"characters, over max_prompt_chars={self.max_prompt_chars}; "
                    "pass a larger max_prompt_chars"
                )
        return {a: {"text": text} for a, text in prompts.items()}

    def _reset_infos(self, task: TaskT) -> dict[str, dict[str, Any]]:
        """Infos at reset: the keys of a step's infos (TorchRL and other spec-building
        libraries need the same keys at reset and step), with zero values of the same types,
        and the real ``task_id`` and ``turn``."""
        if self._info_template is None:
            # Keys do not depend on the answers: take them from the verdict on empty answers.
            empty = dict.fromkeys(self.team_agents, "")
            outcome = self.score(task, empty)
            self._info_template = {
                a: _zeroed(self._info(a, task, 0, outcome, "", empty)) for a in self.agents
            }
        infos = copy.deepcopy(self._info_template)
        for info in infos.values():
            info.update(task_id=task.task_id, turn=0)
        return infos

    def _reward(self, agent: str, outcome: Outcome) -> float:
        if self.reward_mode == "individual":
            return float(outcome.individual[agent])
        return float(outcome.team)

    def _info(
        self,
        agent: str,
        task: TaskT,
        turn: int,
        outcome: Outcome,
        text: str,
        team_actions: Mapping[str, str],
    ) -> dict[str, Any]:
        info: dict[str, Any] = {
            "task_id": task.task_id,
            "turn": turn,
            "team_reward": float(outcome.team),
            "reward_terms": dict(outcome.terms),
            "measures": dict(outcome.measures),
            "action_chars": len(text),
            "action_truncated": len(text) > self.max_action_chars,
        }
        if self.single_agent:
            info["parts_found"] = sum(1 for part in team_actions.values() if part)
        else:
            info["individual_reward"] = float(outcome.individual[agent])
        return info


def _check_reset_arguments(seed: Any, options: Any) -> None:
    """Raise ``TypeError``/``ValueError`` for a ``reset`` seed or options of the wrong kind."""
    if seed is not None:
        if isinstance(seed, bool | np.bool_) or not isinstance(seed, int | np.integer):
            raise TypeError(
                f"seed must be a non-negative int or None, got {type(seed).__name__} {seed!r}"
            )
        if seed < 0:
            raise ValueError(f"seed must be a non-negative int or None, got {seed}")
    if options is not None and not isinstance(options, Mapping):
        raise TypeError(
            "options must be a dict such as {'task_id': env.tasks[0].task_id} or None, "
            f"got {type(options).__name__} {options!r:.60}"
        )
