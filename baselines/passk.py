"""Unbiased estimators of "the best of k samples" from n samples per task (no torch).

With n samples of a task drawn and k <= n, the estimators average over every k-subset of the n
samples, which is what drawing k fresh samples would give in expectation:

- :func:`pass_at_k`: PassOrNot@k, the chance that at least one of k samples passes, from the
  count c of passing samples: ``1 - C(n - c, k) / C(n, k)`` (Chen et al. 2021, the Codex paper).
- :func:`accuracy_at_k`: Accuracy@k, the expected best score (fraction of tests passed) among k
  samples: with the scores sorted ascending, the i-th smallest (1-based) is the best of a
  k-subset in ``C(i - 1, k - 1)`` of the ``C(n, k)`` subsets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["accuracy_at_k", "pass_at_k"]


def _check(n: int, k: int) -> None:
    for name, value in (("n", n), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if n < k:
        raise ValueError(
            f"k={k} needs at least {k} samples per task, got n={n}: raise --samples or lower k"
        )


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k of the n samples passes, given c passing samples."""
    _check(n, k)
    if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= n:
        raise ValueError(f"c (passing samples) must be an int in [0, n={n}], got {c!r}")
    if n - c < k:  # every k-subset holds a passing sample
        return 1.0
    # 1 - C(n-c, k) / C(n, k) as a product, exact in floats for large n (no huge binomials).
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def accuracy_at_k(scores: Sequence[float], k: int) -> float:
    """Expected best score among k of the given samples' scores (drawn without replacement)."""
    values = sorted(float(s) for s in scores)
    _check(len(values), k)
    if any(not math.isfinite(v) for v in values):
        raise ValueError(f"scores must be finite numbers, got {list(scores)!r}")
    total = math.comb(len(values), k)
    return sum(v * math.comb(i, k - 1) for i, v in enumerate(values)) / total
