"""Baselines: MAGRPO and its family, independent and single-agent GRPO, and actor-critics.

``MAGRPOTrainer(MAGRPOConfig(env="tldr_v0", model="embedded")).train()`` trains one LoRA adapter
per agent and writes ``runs/<name>/`` (``metrics.jsonl``, ``reward.png``, ``config.yaml``,
``checkpoints/``). ``llm-marl train --algo magrpo ...`` is the same from the command line;
``llm-marl algos`` lists every registered algorithm. The configs and the registry import no
torch; the trainers (loaded on first use) do.

One training step, module by module (:meth:`Trainer.train_step`):

1. ``tasks.py`` picks the task of each position of the run (seeded, resumable);
2. ``rollout.py`` grows one scored tree per task: every agent samples G answers
   (``llm_marl.models`` batches all agents in one ``generate`` call per turn), joint actions
   step copies of the env, chosen ones branch into the next turn;
3. ``credit.py`` (the estimator) turns each whole tree into groups with advantages:
   ``returns.py`` backs up discounted returns from the team or own reward, ``advantages.py``
   holds the group baselines, ``actor_critic.py`` and ``critic.py`` the learned critics;
4. ``update.py`` backpropagates ``losses.py``'s policy-gradient loss task by task, then every
   optimiser clips and steps;
5. ``metrics.py`` and ``run_log.py`` log the step; ``checkpoint.py`` saves it;
   ``evaluation.py`` scores greedy answers on the test split.

Evaluation (``llm-marl eval``, ``llm-marl reproduce``; see ``docs/evaluation.md``):
``protocols.py`` plays held-out tasks under the ``single``, ``parallel``, ``sequential`` and
``discussion`` protocols (trained teams too), ``eval_metrics.py`` and ``passk.py`` score them,
``eval_run.py`` runs one cell, ``reproduce.py`` and ``reproduce_run.py`` run a whole table, and
``cells.py``, ``stats.py``, ``results*.py`` and ``run_card.py`` write its results folder.

An algorithm is a config class (``config.py``) and a thin trainer subclass overriding only
these stages' hooks, registered in ``registry.py`` (or through the ``llm_marl.algorithms``
entry-point group): see ``docs/algorithms.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

from llm_marl.baselines.config import (
    ActorCriticConfig,
    GRPOConfig,
    IACConfig,
    IGRPOConfig,
    MAACConfig,
    MAGRPOConfig,
    MAREINFORCEConfig,
    MAReMaxConfig,
    MARLOOConfig,
    TrainConfig,
)
from llm_marl.baselines.interrupt import TrainingInterrupted
from llm_marl.baselines.registry import (
    AlgorithmSpec,
    algorithm,
    list_algorithms,
    register_algorithm,
)
from llm_marl.baselines.run_watch import RunWarning

__all__ = [
    "ActorCriticConfig",
    "AlgorithmSpec",
    "GRPOConfig",
    "GRPOTrainer",
    "IACConfig",
    "IACTrainer",
    "IGRPOConfig",
    "IGRPOTrainer",
    "MAACConfig",
    "MAACTrainer",
    "MAGRPOConfig",
    "MAGRPOTrainer",
    "MAREINFORCEConfig",
    "MAREINFORCETrainer",
    "MARLOOConfig",
    "MARLOOTrainer",
    "MAReMaxConfig",
    "MAReMaxTrainer",
    "RunWarning",
    "TrainConfig",
    "Trainer",
    "TrainingInterrupted",
    "algorithm",
    "list_algorithms",
    "register_algorithm",
    "trainer_class",
]

#: Trainer classes importable from this package without importing torch up front.
_LAZY = {
    "Trainer": "llm_marl.baselines.trainer",
    "MAGRPOTrainer": "llm_marl.baselines.magrpo",
    "MAREINFORCETrainer": "llm_marl.baselines.mareinforce",
    "MARLOOTrainer": "llm_marl.baselines.marloo",
    "MAReMaxTrainer": "llm_marl.baselines.maremax",
    "IGRPOTrainer": "llm_marl.baselines.igrpo",
    "GRPOTrainer": "llm_marl.baselines.grpo",
    "IACTrainer": "llm_marl.baselines.iac",
    "MAACTrainer": "llm_marl.baselines.maac",
}


def trainer_class(algo: str) -> Any:
    """The trainer class of registered algorithm ``algo`` (imports torch)."""
    return algorithm(algo).trainer_class()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'llm_marl.baselines' has no attribute {name!r}")
