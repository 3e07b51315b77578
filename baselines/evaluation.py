"""The trainers' held-out check: each agent answers once per turn (greedy), on the test tasks.

All episodes advance turn by turn together, so each turn of every task is one batched
``generate`` call (:func:`llm_marl.baselines.protocols.play`, protocol ``parallel``; the full
evaluation of the tables is :mod:`llm_marl.baselines.eval_run`).
Metrics: ``eval/team_reward_mean`` (mean team reward over every turn played),
``eval/team_reward_last_turn``, ``eval/terms/{name}`` (last turn) and ``eval/num_tasks``.
An episode with a step the code sandbox could not judge (``infos[agent]["sandbox_status"] ==
"sandbox_error"``) is left out of the scores and counted in ``eval/sandbox_error_tasks``.
"""

from __future__ import annotations

import statistics
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pettingzoo import ParallelEnv

from llm_marl.baselines.protocols import play, seats_for
from llm_marl.baselines.run_summary import plural
from llm_marl.baselines.run_watch import RunWarning
from llm_marl.env_protocol import env_task_ids

if TYPE_CHECKING:
    from llm_marl.models import SamplingConfig, Team
    from llm_marl.models.backends import GenerationBackend

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
    sampler: GenerationBackend | None = None,
) -> dict[str, float]:
    """Play one episode per reset with greedy answers; the team reward metrics.

    The episodes are played by :func:`llm_marl.baselines.protocols.play` (protocol
    ``parallel``, one sample per task), the code path of every evaluation; ``sampler``
    samples the answers (None: the team's own ``generate``).
    """
    greedy = replace(sampling, num_samples=1, temperature=0.0)
    seats = seats_for(team, env.possible_agents, sampler)
    played = play(env, resets, seats, "parallel", greedy, samples=1)
    finished = [task.episodes[0] for task in played.tasks]
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
        for name, value in episode.terms.items():
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
