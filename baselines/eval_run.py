"""One evaluation cell: a team, seated in an env under a protocol, scored on held-out tasks.

``llm-marl eval`` and ``llm-marl reproduce`` both evaluate through :func:`evaluate_cell`, with
an :class:`EvalSettings` (samples per task, the k of pass@k, sampling settings) that is the
same for every method of a table.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import llm_marl
from llm_marl.baselines.eval_metrics import score_tasks, summarize, table_family
from llm_marl.baselines.evaluation import evaluation_resets
from llm_marl.baselines.protocols import (
    Seat,
    check_protocol,
    play,
    rounds_per_episode,
)
from llm_marl.checks import check_int

if TYPE_CHECKING:
    from pettingzoo import ParallelEnv

__all__ = ["EvalSettings", "evaluate_cell", "protocol_env", "team_folder"]


@dataclass(frozen=True)
class EvalSettings:
    """The evaluation budget, the same for every method of a table."""

    samples: int = 4
    """Episodes (joint samples) per task: the n of pass@k."""
    ks: tuple[int, ...] = (1,)
    """The k of PassOrNot@k and Accuracy@k, each <= ``samples``."""
    num_tasks: int | None = None
    """The first N tasks of the test split; none: all of them."""
    temperature: float = 0.8
    """Sampling temperature (0: greedy, which makes every sample of a task the same)."""
    top_p: float = 0.95
    """Nucleus sampling mass."""
    max_new_tokens: int = 256
    """Longest answer in tokens."""
    batch_size: int | None = None
    """Most sequences in one generate call; none: every running episode at once."""
    seed: int = 0
    """Seed of the sampling (``torch.manual_seed`` before the cell)."""
    task_ids: tuple[str, ...] = field(default=())
    """Evaluate these test tasks instead of the first ``num_tasks``."""

    def __post_init__(self) -> None:
        check_int("samples", self.samples, 1)
        check_int("max_new_tokens", self.max_new_tokens, 1)
        check_int("seed", self.seed, 0)
        if self.num_tasks is not None:
            check_int("num_tasks", self.num_tasks, 1)
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size, 1)
        if not self.ks:
            raise ValueError("ks must name at least one k, such as (1,)")
        for k in self.ks:
            check_int("k", k, 1)
            if k > self.samples:
                raise ValueError(
                    f"k={k} needs at least {k} samples per task, got samples={self.samples}: "
                    "raise --samples or lower --k"
                )
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError(f"temperature must be >= 0, got {self.temperature!r}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")


def protocol_env(
    env_id: str,
    protocol: str,
    *,
    env_kwargs: Mapping[str, Any] | None = None,
    num_turns: int = 1,
) -> ParallelEnv[Any, Any, Any]:
    """The test-split env a protocol plays: the single-agent view for ``single``, one turn
    for ``discussion``, shared team rewards for all."""
    check_protocol(protocol)
    kwargs = dict(env_kwargs or {})
    kwargs["split"] = "test"
    kwargs.pop("reward_mode", None)  # tables score the team reward
    if protocol == "single":
        kwargs["single_agent"] = True
    if num_turns != 1:
        if protocol == "discussion":
            raise ValueError("the discussion protocol is one turn of drafts and one of answers")
        kwargs["num_turns"] = num_turns
    return llm_marl.make(env_id, **kwargs)


def evaluate_cell(
    env: ParallelEnv[Any, Any, Any],
    seats: Mapping[str, Seat],
    protocol: str,
    settings: EvalSettings,
    *,
    progress: str | None = None,
) -> dict[str, Any]:
    """Play and score the test tasks: ``{"metrics", "tasks", "eval_seconds", "family",
    "samples", "k"}`` in the cell format of the results folder. ``progress``: the label of a
    progress bar over the generation rounds (none: no bar)."""
    import torch
    from tqdm.auto import tqdm

    from llm_marl.models import SamplingConfig

    resets = _resets(env, settings)
    sampling = SamplingConfig(
        num_samples=1,
        temperature=settings.temperature,
        top_p=settings.top_p if settings.temperature > 0 else 1.0,
        max_new_tokens=settings.max_new_tokens,
        batch_size=settings.batch_size,
    )
    torch.manual_seed(settings.seed)
    start = time.perf_counter()
    turns = int(getattr(env, "num_turns", 1))
    total = rounds_per_episode(protocol, len(env.possible_agents), turns)
    with tqdm(total=total, desc=progress, unit="round", disable=progress is None) as bar:
        result = play(
            env, resets, seats, protocol, sampling, settings.samples, on_round=lambda: bar.update()
        )
    family = table_family(result)
    tasks = score_tasks(result, settings.ks, family)
    return {
        "protocol": protocol,
        "family": family,
        "samples": settings.samples,
        "k": list(settings.ks),
        "metrics": summarize(tasks),
        "tasks": tasks,
        "eval_seconds": time.perf_counter() - start,
    }


def _resets(env: ParallelEnv[Any, Any, Any], settings: EvalSettings) -> list[dict[str, Any]]:
    if settings.task_ids:
        return [{"seed": i, "options": {"task_id": t}} for i, t in enumerate(settings.task_ids)]
    tasks = getattr(env, "tasks", None)
    count = settings.num_tasks or (len(tasks) if tasks is not None else 0)
    if not count:
        raise ValueError("the env lists no tasks: give num_tasks (resets use seeds 0..N-1)")
    return evaluation_resets(env, count)


def team_folder(path: str | Path) -> Path:
    """The saved team inside ``path``: a team folder itself (``team.json``), a checkpoint
    (its ``team/``) or a run folder (its newest intact checkpoint's ``team/``)."""
    from llm_marl.baselines.checkpoint import TEAM_DIR, latest_checkpoint

    root = Path(path).expanduser()
    if (root / "team.json").is_file():
        return root
    if (root / TEAM_DIR / "team.json").is_file():
        return root / TEAM_DIR
    if (root / "checkpoints").is_dir():
        newest = latest_checkpoint(root / "checkpoints")
        if newest is not None:
            return newest / TEAM_DIR
        raise ValueError(f"{root} is a run folder without an intact checkpoint to evaluate")
    what = "holds no saved team" if root.exists() else "does not exist"
    raise ValueError(
        f"{root} {what}: give a run folder, one of its checkpoints "
        "(runs/NAME/checkpoints/step-N) or a folder written by Team.save_pretrained"
    )
