"""How a team answers a task at evaluation time: the interaction protocols, trained or not.

Every method of the evaluation tables, an untrained base model or a trained team, plays the
held-out tasks through :func:`play`, with the same split, the same number of samples per task
and the same sampling settings, so comparisons are compute-matched by construction.

Protocols (``PROTOCOLS``):

- ``single``: the env's single-agent view (``single_agent=True``): one model writes every part
  in one answer, which the env splits and scores with the team reward.
- ``parallel``: each agent answers its own prompt, all at once; in multi-turn envs the env's
  transition builds the next prompts (how the multi-agent trainers train).
- ``sequential``: the agents answer one after another; each sees the answers of the agents
  before it in the same turn (appended to its prompt).
- ``discussion``: one round of discussion: every agent drafts an answer to its prompt; then each
  sees its own draft and its partners' and writes its final answer. Only the final answers are
  scored (the drafts get no reward and no env feedback).

Each of the ``samples`` episodes of a task is played independently (its own env copy and its
own samples, ``num_samples=1`` per request), so sample i of every agent forms joint action i.
Who answers for each agent is a :class:`Seat`: a team and the agent's name inside it, or the
empty answer. Cross-play (agents from different teams) and leave-one-agent-out ablations are
seat assignments, played through the same code.

Latency is measured the same way for every protocol: each generation round (one batched call
per team that has seats in it: the agents of a round answer together) is timed; a round lasts
as long as its slowest call, and rounds are summed. ``sequential`` has one round per agent and
turn, ``discussion`` two per turn, the others one.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pettingzoo import ParallelEnv

from llm_marl.env_protocol import observation_text, sandbox_failed, team_outcome

if TYPE_CHECKING:
    from llm_marl.models import SamplingConfig, Team
    from llm_marl.models.backends import GenerationBackend

__all__ = [
    "PROTOCOLS",
    "EpisodeResult",
    "PlayResult",
    "Seat",
    "TaskResult",
    "check_protocol",
    "discussion_prompt",
    "play",
    "rounds_per_episode",
    "seats_for",
    "sequential_prompt",
]

PROTOCOLS: tuple[str, ...] = ("single", "parallel", "sequential", "discussion")


@dataclass(frozen=True)
class Seat:
    """Who answers for one agent: ``team``'s agent ``name``, or nobody (``team=None``: the
    empty answer, for leave-one-agent-out)."""

    team: Team | None
    name: str = ""
    sampler: GenerationBackend | None = None
    """What samples the team's answers; None: the team's own ``generate``."""


def seats_for(
    team: Team, agents: Sequence[str], sampler: GenerationBackend | None = None
) -> dict[str, Seat]:
    """Seat ``team`` at every agent: by name when the team has the env's agents, else its one
    agent in every seat (a single base model playing every role); ``sampler`` samples its
    answers (None: the team's own ``generate``)."""
    if all(a in team.agents for a in agents):
        return {a: Seat(team, a, sampler) for a in agents}
    if len(team.agents) == 1:
        return {a: Seat(team, team.agents[0], sampler) for a in agents}
    raise ValueError(
        f"the team's agents {list(team.agents)} are not the env's {list(agents)}: load the "
        "team for these agents, or a one-agent model to play every role"
    )


@dataclass
class EpisodeResult:
    """One played episode of a task: what was answered and what the env gave back."""

    answers: list[dict[str, str]] = field(default_factory=list)
    """The scored answers of each turn (agent -> text)."""
    rewards: list[float] = field(default_factory=list)
    """The team reward of each turn."""
    terms: dict[str, float] = field(default_factory=dict)
    """The last turn's reward terms."""
    measures: dict[str, Any] = field(default_factory=dict)
    """The last turn's ``infos[agent]["measures"]`` (of the first agent)."""
    tokens: int = 0
    """Tokens generated for this episode, by every agent in every round (drafts included)."""
    sandbox_error: bool = False
    """A step the code sandbox could not judge: the episode's score means nothing."""

    @property
    def reward(self) -> float:
        """The final turn's team reward."""
        return self.rewards[-1]


@dataclass
class TaskResult:
    """The episodes of one task."""

    task_id: str
    episodes: list[EpisodeResult]


@dataclass
class PlayResult:
    """Every task's episodes and the generation time of the whole batch."""

    tasks: list[TaskResult]
    generation_seconds: float
    """Rounds' wall time (each round: its slowest batched call), summed."""
    rounds: int


def rounds_per_episode(protocol: str, num_agents: int, num_turns: int) -> int:
    """Generation rounds of one episode: per turn one (``single``, ``parallel``), one per
    agent (``sequential``), or a draft round and an answer round (``discussion``)."""
    per_turn = {"single": 1, "parallel": 1, "sequential": num_agents, "discussion": 2}
    return per_turn[check_protocol(protocol)] * num_turns


def check_protocol(protocol: str) -> str:
    """``protocol`` if it is one of :data:`PROTOCOLS`, else a ``ValueError`` listing them."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; protocols are {', '.join(PROTOCOLS)}")
    return protocol


def sequential_prompt(prompt: str, earlier: Mapping[str, str]) -> str:
    """``prompt`` followed by the answers the agents before this one gave in this turn."""
    if not earlier:
        return prompt
    shown = "\n\n".join(f"[{agent}]\n{text}" for agent, text in earlier.items())
    return (
        f"{prompt}\n\nYour teammates before you have answered:\n{shown}\n\n"
        "Write your own part so that it fits with theirs."
    )


def discussion_prompt(prompt: str, agent: str, drafts: Mapping[str, str]) -> str:
    """``prompt`` with the first round: the agent's own draft and its partners' drafts."""
    partners = "\n\n".join(f"[{a}]\n{text}" for a, text in drafts.items() if a != agent)
    return (
        f"{prompt}\n\nFirst round of the discussion.\nYour draft:\n{drafts[agent]}\n\n"
        f"Your teammates' drafts:\n{partners}\n\n"
        "Now write your final answer to your part, taking your teammates' drafts into account."
    )


def play(
    env: ParallelEnv[Any, Any, Any],
    resets: Sequence[Mapping[str, Any]],
    seats: Mapping[str, Seat],
    protocol: str,
    sampling: SamplingConfig,
    samples: int,
    *,
    on_round: Callable[[], None] | None = None,
) -> PlayResult:
    """Play ``samples`` episodes of every reset of ``env`` under ``protocol``.

    ``env`` is copied for every episode, never stepped itself; for ``single`` it must be the
    env's single-agent view. ``sampling.num_samples`` is ignored (each episode samples once
    per request); with ``temperature=0`` all episodes of a task are equal. ``on_round`` is
    called after each generation round (:func:`rounds_per_episode` of them at most).
    """
    check_protocol(protocol)
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    missing = [a for a in env.possible_agents if a not in seats]
    if missing:
        raise ValueError(f"no seat for agents {missing}; seats are {sorted(seats)}")
    if protocol == "discussion" and getattr(env, "num_turns", 1) != 1:
        raise ValueError("the discussion protocol plays one-turn envs: build it with num_turns=1")
    once = replace(sampling, num_samples=1)
    games = [_Game.start(env, kwargs) for kwargs in resets for _ in range(samples)]
    clock = _Clock(on_round)
    running = list(games)
    while running:
        rounds = _ROUNDS[protocol]
        actions = rounds(running, seats, once, clock)
        for game, joint in zip(running, actions, strict=True):
            game.advance(joint)
        running = [g for g in running if g.env.agents]
    tasks: list[TaskResult] = []
    for i, kwargs in enumerate(resets):
        episodes = [g.result for g in games[i * samples : (i + 1) * samples]]
        tasks.append(TaskResult(games[i * samples].task_id or _reset_name(kwargs), episodes))
    return PlayResult(tasks, clock.seconds, clock.rounds)


@dataclass
class _Game:
    """One running episode: its env copy, latest observations and result so far."""

    env: ParallelEnv[Any, Any, Any]
    observations: Mapping[str, Any]
    task_id: str | None
    result: EpisodeResult = field(default_factory=EpisodeResult)

    @classmethod
    def start(cls, env: ParallelEnv[Any, Any, Any], kwargs: Mapping[str, Any]) -> _Game:
        episode = copy.deepcopy(env)
        observations, infos = episode.reset(**kwargs)
        first = infos.get(episode.agents[0], {}) if episode.agents else {}
        task_id = first.get("task_id")
        return cls(episode, observations, str(task_id) if task_id is not None else None)

    def prompt(self, agent: str) -> str:
        return observation_text(self.observations[agent])

    def advance(self, joint: dict[str, str]) -> None:
        acting = list(self.env.agents)
        self.observations, rewards, _, _, infos = self.env.step({a: joint[a] for a in acting})
        team, terms = team_outcome(infos, {a: rewards[a] for a in acting})
        result = self.result
        result.answers.append({a: joint[a] for a in acting})
        result.rewards.append(team)
        result.terms = terms
        result.measures = dict(infos.get(acting[0], {}).get("measures", {}))
        result.sandbox_error |= sandbox_failed(infos)


class _Clock:
    """Sums the generation rounds' wall time."""

    def __init__(self, on_round: Callable[[], None] | None) -> None:
        self.seconds, self.rounds, self.on_round = 0.0, 0, on_round

    def add_round(self, slowest: float) -> None:
        self.seconds += slowest
        self.rounds += 1
        if self.on_round is not None:
            self.on_round()


def _answer(
    requests: Sequence[tuple[_Game, str, str]],
    seats: Mapping[str, Seat],
    sampling: SamplingConfig,
    clock: _Clock,
) -> list[str]:
    """One generation round: the answer to each ``(game, agent, prompt)``, one batched call
    per team; each answer's tokens are added to its game."""
    answers = [""] * len(requests)
    by_team: dict[int, list[int]] = {}
    for i, (_, agent, _) in enumerate(requests):
        team = seats[agent].team
        if team is not None:
            by_team.setdefault(id(team), []).append(i)
    slowest = 0.0
    for rows in by_team.values():
        seat = seats[requests[rows[0]][1]]
        team = seat.team
        assert team is not None
        calls = [(seats[requests[i][1]].name, requests[i][2]) for i in rows]
        start = time.perf_counter()
        if seat.sampler is None:
            completions = team.generate(calls, sampling)
        else:
            completions = seat.sampler.generate(team, calls, sampling)
        slowest = max(slowest, time.perf_counter() - start)
        for i, (completion,) in zip(rows, completions, strict=True):
            answers[i] = completion.text
            requests[i][0].result.tokens += len(completion.token_ids)
    clock.add_round(slowest)
    return answers


def _parallel(
    games: Sequence[_Game], seats: Mapping[str, Seat], sampling: SamplingConfig, clock: _Clock
) -> list[dict[str, str]]:
    requests = [(g, a, g.prompt(a)) for g in games for a in g.env.agents]
    answers = iter(_answer(requests, seats, sampling, clock))
    return [{a: next(answers) for a in g.env.agents} for g in games]


def _sequential(
    games: Sequence[_Game], seats: Mapping[str, Seat], sampling: SamplingConfig, clock: _Clock
) -> list[dict[str, str]]:
    joints: list[dict[str, str]] = [{} for _ in games]
    for position in range(max(len(g.env.agents) for g in games)):
        requests, owners = [], []
        for joint, game in zip(joints, games, strict=True):
            if position < len(game.env.agents):
                agent = game.env.agents[position]
                requests.append((game, agent, sequential_prompt(game.prompt(agent), joint)))
                owners.append((joint, agent))
        for (joint, agent), text in zip(
            owners, _answer(requests, seats, sampling, clock), strict=True
        ):
            joint[agent] = text
    return joints


def _discussion(
    games: Sequence[_Game], seats: Mapping[str, Seat], sampling: SamplingConfig, clock: _Clock
) -> list[dict[str, str]]:
    drafts = _parallel(games, seats, sampling, clock)
    requests = [
        (g, a, discussion_prompt(g.prompt(a), a, draft))
        for g, draft in zip(games, drafts, strict=True)
        for a in g.env.agents
    ]
    answers = iter(_answer(requests, seats, sampling, clock))
    return [{a: next(answers) for a in g.env.agents} for g in games]


_ROUNDS = {
    "single": _parallel,
    "parallel": _parallel,
    "sequential": _sequential,
    "discussion": _discussion,
}


def _reset_name(kwargs: Mapping[str, Any]) -> str:
    options = kwargs.get("options") or {}
    if "task_id" in options:
        return str(options["task_id"])
    return f"seed-{kwargs.get('seed')}"
