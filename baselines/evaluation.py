"""Held-out evaluation: each agent answers once per turn (greedy), on the env's test tasks.

All episodes advance turn by turn together, so each turn of every task is one batched
``generate`` call. Metrics: ``eval/team_reward_mean`` (mean team reward over every turn played),
``eval/team_reward_last_turn``, ``eval/terms/{name}`` (last turn) and ``eval/num_tasks``.
"""

from __future__ import annotations

import copy
import statistics
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from pettingzoo import ParallelEnv

from llm_marl.baselines.run_summary import plural
from llm_marl.baselines.run_watch import RunWarning
from llm_marl.env_protocol import env_task_ids, observation_text, team_outcome
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
    episodes = []
    for kwargs in resets:
        episode = copy.deepcopy(env)
        observations, _ = episode.reset(**kwargs)
        episodes.append((episode, observations))
    all_rewards: list[float] = []
    last: list[float] = []
    terms: dict[str, list[float]] = defaultdict(list)
    while episodes:
        requests = [(a, observation_text(obs[a])) for env_, obs in episodes for a in env_.agents]
        answers = iter(team.generate(requests, greedy))
        still_running = []
        for episode, observations in episodes:
            actions = {agent: next(answers)[0].text for agent in episode.agents}
            observations, rewards, _, _, infos = episode.step(actions)
            team_reward, step_terms = team_outcome(infos, {a: rewards[a] for a in actions})
            all_rewards.append(team_reward)
            if episode.agents:
                still_running.append((episode, observations))
            else:
                last.append(team_reward)
                for name, value in step_terms.items():
                    terms[name].append(value)
        episodes = still_running
    metrics = {
        "eval/num_tasks": float(len(resets)),
        "eval/team_reward_mean": statistics.fmean(all_rewards),
        "eval/team_reward_last_turn": statistics.fmean(last),
    }
    metrics.update({f"eval/terms/{k}": statistics.fmean(v) for k, v in sorted(terms.items())})
    return metrics
