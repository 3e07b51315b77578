"""Held-out evaluation: each agent answers once per turn (greedy), on the env's test tasks.

All episodes advance turn by turn together, so each turn of every task is one batched
``generate`` call. Metrics: ``eval/team_reward_mean`` (mean team reward over every turn played),
``eval/team_reward_last_turn``, ``eval/terms/{name}`` (last turn) and ``eval/num_tasks``.
An episode with a step the code sandbox could not judge (``infos[agent]["sandbox_status"] ==
"sandbox_error"``) is left out of the scores and counted in ``eval/sandbox_error_tasks``.
"""

from __future__ import annotations

import copy
import statistics
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pettingzoo import ParallelEnv

from llm_marl.baselines.run_summary import plural
from llm_marl.baselines.run_watch import RunWarning
from llm_marl.env_protocol import env_task_ids, observation_text, sandbox_failed, team_outcome
from llm_marl.models import SamplingConfig, Team

__all__ = ["evaluate", "evaluation_resets"]


def evaluation_resets(env: ParallelEnv[Any, Any, Any], num_tasks: int) -> list[dict[str, Any]]:
    """Reset arguments of the first ``num_tasks`` listed tasks (or seeds 0.. for other envs)."""
    ids = env_task_ids(env)
    if ids is None:
        return [{"seed": i} for i in range(num_tasks)]
    if len(ids) < num_tasks:
        warnings.warn(
            f"eval_tasks={num_tasks}, but the test split has {plural(len(ids), 'task')}: "
            f"evaluating {len(ids)} (lower --eval-tasks, or give data with more test tasks)",
            RunWarning,
            stacklevel=2,
        )
    return [{"seed": i, "options": {"task_id": t}} for i, t in enumerate(ids[:num_tasks])]


def evaluate(
    team: Team,
    env: ParallelEnv[Any, Any, Any],
    resets: Sequence[dict[str, Any]],
    sampling: SamplingConfig,
) -> dict[str, float]:
    """Play one episode per reset with greedy answers; the team reward metrics."""
    greedy = replace(sampling, num_samples=1, temperature=0.0)
    running = []
    for kwargs in resets:
        episode = copy.deepcopy(env)
        observations, _ = episode.reset(**kwargs)
        running.append(_Episode(episode, observations))
    finished: list[_Episode] = []
    while running:
        requests = [(a, observation_text(e.observations[a])) for e in running for a in e.env.agents]
        answers = iter(team.generate(requests, greedy))
        for episode in running:
            actions = {agent: next(answers)[0].text for agent in episode.env.agents}
            episode.observations, rewards, _, _, infos = episode.env.step(actions)
            team_reward, episode.last_terms = team_outcome(infos, {a: rewards[a] for a in actions})
            episode.rewards.append(team_reward)
            episode.sandbox_error |= sandbox_failed(infos)
        finished += [e for e in running if not e.env.agents]
        running = [e for e in running if e.env.agents]
    scored = [e for e in finished if not e.sandbox_error]
    if not scored and finished:
        warnings.warn(
            f"every evaluation episode ({len(finished)}) had a sandbox error, so there is no "
            "score; check llm_marl.sandbox.isolation() and the machine's load",
            RunWarning,
            stacklevel=2,
        )
    nan = float("nan")
    terms: dict[str, list[float]] = defaultdict(list)
    for episode in scored:
        for name, value in episode.last_terms.items():
            terms[name].append(value)
    metrics = {
        "eval/num_tasks": float(len(resets)),
        "eval/sandbox_error_tasks": float(len(finished) - len(scored)),
        "eval/team_reward_mean": (
            statistics.fmean(r for e in scored for r in e.rewards) if scored else nan
        ),
        "eval/team_reward_last_turn": (
            statistics.fmean(e.rewards[-1] for e in scored) if scored else nan
        ),
    }
    metrics.update({f"eval/terms/{k}": statistics.fmean(v) for k, v in sorted(terms.items())})
    return metrics


@dataclass
class _Episode:
    """One evaluation episode: its env, latest observations and what its steps scored."""

    env: ParallelEnv[Any, Any, Any]
    observations: Any
    rewards: list[float] = field(default_factory=list)
    last_terms: dict[str, float] = field(default_factory=dict)
    sandbox_error: bool = False
