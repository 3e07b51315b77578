"""The data order of a run: which task each position of the run trains on, deterministically.

Position k (the k-th task of the run, counting every task of every update) maps to a task
through ``(seed, k)`` alone, so a resumed run sees the same tasks in the same order. Envs that
list their tasks (``env.tasks`` with ``task_id``, as every llm-marl env does) are walked in a
fresh shuffled order each epoch; other envs are reset with a seed drawn from ``(seed, k)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from llm_marl.env_protocol import env_task_ids

__all__ = ["TaskOrder", "listed_task_ids"]


#: The env's task ids, or None when it does not list them (kept under its old name).
listed_task_ids = env_task_ids


class TaskOrder:
    """Reset arguments for each position of a run."""

    def __init__(self, env: Any, seed: int) -> None:
        self.seed = seed
        self.task_ids = env_task_ids(env)

    def _seed(self, position: int, stream: int) -> int:
        """A seed drawn from the run's seed, ``position`` and ``stream`` alone."""
        return int(np.random.default_rng([self.seed, position, stream]).integers(2**31))

    def sample_seed(self, position: int) -> int:
        """The seed of the sampling at ``position``: samples depend on the task's place in the
        run alone, not on which process rolls it out or what ran before."""
        return self._seed(position, 2)

    def reset_kwargs(self, position: int) -> dict[str, Any]:
        """``env.reset`` keyword arguments for the task at ``position`` (0-based)."""
        episode_seed = self._seed(position, 1)
        if self.task_ids is None:
            return {"seed": episode_seed}
        epoch, index = divmod(position, len(self.task_ids))
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.task_ids))
        return {"seed": episode_seed, "options": {"task_id": self.task_ids[int(order[index])]}}
