"""What data-parallel updates need beyond the gradient sum: per-task seeds, one step's records.

:func:`seeded_sampling` makes a task's samples depend on its seed alone (so a run samples the
same answers on any number of processes); :func:`gather_step` brings every process's trees,
credits and loss sums together, in task order, so the metrics of a step are those of one
process that ran all of its tasks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import torch

from llm_marl.baselines.credit import Credit
from llm_marl.baselines.distributed import DataParallel
from llm_marl.baselines.rollout import Node, RolloutStats
from llm_marl.baselines.update import LossStats

__all__ = ["gather_step", "seeded_sampling"]


@contextlib.contextmanager
def seeded_sampling(seed: int) -> Iterator[None]:
    """Seed torch's generators (CPU and the current GPU) with ``seed`` for the block, then
    put back their states: whatever else draws random numbers is not shifted."""
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def gather_step(
    parallel: DataParallel,
    tasks_per_step: int,
    trees: list[Node],
    kept: list[Node],
    credits: list[Credit],
    loss: LossStats,
    stats: RolloutStats,
) -> tuple[list[Node], list[Node], list[Credit], LossStats, RolloutStats]:
    """Every process's trees, kept trees and credits in task order, and the summed loss and
    sampling statistics (throughput: all tokens over the slowest process's time).

    ``credits`` are those of ``kept`` (same order); ``trees`` those of this process's tasks,
    :meth:`DataParallel.shard` of ``tasks_per_step``.
    """
    credit_of = {id(tree): _detached(c) for tree, c in zip(kept, credits, strict=True)}
    indices = parallel.shard(tasks_per_step)
    mine = [(k, t, credit_of.get(id(t))) for k, t in zip(indices, trees, strict=True)]
    parts = parallel.gather((mine, loss, stats))
    tasks = sorted((task for part in parts for task in part[0]), key=lambda task: task[0])
    total = LossStats()
    for _, part_loss, _ in parts:
        total.add(part_loss)
    sampled = RolloutStats(
        generation_seconds=max(part[2].generation_seconds for part in parts),
        generated_tokens=sum(part[2].generated_tokens for part in parts),
    )
    all_trees = [tree for _, tree, _ in tasks]
    all_kept = [tree for _, tree, credit in tasks if credit is not None]
    all_credits = [credit for _, _, credit in tasks if credit is not None]
    return all_trees, all_kept, all_credits, total, sampled


def _detached(credit: Credit) -> Credit:
    """``credit`` with every tensor detached on the CPU, so it can be pickled to process 0."""
    groups = [
        replace(g, reference=_plain(g.reference), advantages=_plain(g.advantages))
        for g in credit.groups
    ]
    return replace(credit, groups=groups, extras=_plain(credit.extras))


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    return value
