"""PettingZoo's module shape for parallel envs: the AEC ``raw_env`` and ``env`` factories."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec, parallel_to_aec_wrapper

__all__ = ["aec_factories"]


def _raw_aec_env(parallel_env: Callable[..., ParallelEnv], **kwargs: Any) -> AECEnv:
    return parallel_to_aec_wrapper(parallel_env(**kwargs))


def _aec_env(parallel_env: Callable[..., ParallelEnv], **kwargs: Any) -> AECEnv:
    return parallel_to_aec(parallel_env(**kwargs))


def aec_factories(
    parallel_env: Callable[..., ParallelEnv],
) -> tuple[Callable[..., AECEnv], Callable[..., AECEnv]]:
    """PettingZoo's ``raw_env`` and ``env`` for a parallel env class (both picklable).

    ``raw_env(**kwargs)`` is the plain AEC conversion; ``env(**kwargs)`` adds the
    order-enforcing wrapper, as PettingZoo's own env modules do.
    """
    return functools.partial(_raw_aec_env, parallel_env), functools.partial(_aec_env, parallel_env)
