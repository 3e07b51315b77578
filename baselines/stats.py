"""Statistics of the results report: a Student-t interval over seeds, a paired bootstrap test.

No scipy: the t quantile is found by bisection on the t distribution's CDF, written through the
regularized incomplete beta function (a continued fraction). Only numpy and the standard library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Bootstrap", "MeanCI", "mean_ci", "paired_bootstrap", "t_cdf", "t_quantile"]

_EPS = 1e-15  # relative accuracy of the continued fraction
_TINY = 1e-300  # guards the continued fraction's divisions


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz's method)."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 1000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),  # even step
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),  # odd step
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):  # the fraction converges fast on this side
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t distribution with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"df={df}: the degrees of freedom must be positive")
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))  # P(T > |t|)
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (t(0.975, 4) = 2.776)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p={p}: a quantile needs 0 < p < 1")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:  # t(0.9995, 1) is about 637: a few doublings
        high *= 2.0
    for _ in range(200):
        mid = (low + high) / 2.0
        if t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low <= 1e-12 * high:
            break
    return (low + high) / 2.0


@dataclass(frozen=True)
class MeanCI:
    """A mean over ``n`` values and its confidence interval (NaN bounds when ``n`` is 1)."""

    mean: float
    low: float
    high: float
    n: int

    def format(self, digits: int = 3) -> str:
        """``"1.234 [1.100, 1.368]"``, or ``"1.234 [n/a]"`` when the interval is undefined."""
        if math.isnan(self.mean):
            return "n/a"
        if math.isnan(self.low):
            return f"{self.mean:.{digits}f} [n/a]"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> MeanCI:
    """The mean of ``values`` (one per seed) and its Student-t confidence interval.

    The half-width is t((1 + confidence) / 2, n - 1) * s / sqrt(n), with s the sample standard
    deviation. One value has no spread to estimate: its bounds are NaN (shown as "n/a").
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence}: give a level between 0 and 1, e.g. 0.95")
    data = [float(v) for v in values]
    if not data:
        raise ValueError("mean_ci of no values: give at least one value (one per seed)")
    n = len(data)
    mean = math.fsum(data) / n
    if n == 1:
        return MeanCI(mean, math.nan, math.nan, 1)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in data) / (n - 1))
    half = t_quantile((1.0 + confidence) / 2.0, n - 1) * sd / math.sqrt(n)
    return MeanCI(mean, mean - half, mean + half, n)


@dataclass(frozen=True)
class Bootstrap:
    """A paired bootstrap of mean(a - b): the difference, its percentile interval, a p-value."""

    diff: float
    low: float
    high: float
    p_value: float
    n: int
    resamples: int


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    *,
    resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Bootstrap:
    """Tests whether mean(a) differs from mean(b) on paired samples (``a[i]`` pairs ``b[i]``).

    Pairs are resampled with replacement ``resamples`` times (numpy's generator seeded by
    ``seed``: the same inputs give the same result). The interval holds the central
    ``confidence`` share of the resampled mean differences. The two-sided p-value is the share
    of resampled differences, shifted to the null of no difference, at least as far from 0 as the
    observed one, counted with the +1 correction (Davison & Hinkley), so it is never exactly 0:
    equal arrays give p = 1, a constant shift p = 1 / (resamples + 1).
    """
    if len(a) != len(b):
        raise ValueError(
            f"paired_bootstrap: {len(a)} values in a but {len(b)} in b; pair every a[i] "
            "with a b[i] (the same seed and task)"
        )
    if not a:
        raise ValueError("paired_bootstrap of no pairs: give at least one (a[i], b[i]) pair")
    if resamples < 1:
        raise ValueError(f"resamples={resamples}: give at least 1 (10000 is the default)")
    diffs = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)  # (n,)
    observed = float(diffs.mean())
    rng = np.random.default_rng(seed)
    # Chunks of resamples keep the index matrix small for many pairs.
    chunk = max(1, 2_000_000 // len(diffs))
    means = np.concatenate(
        [
            diffs[
                rng.integers(0, len(diffs), size=(min(chunk, resamples - start), len(diffs)))
            ].mean(axis=1)  # (chunk,)
            for start in range(0, resamples, chunk)
        ]
    )  # (resamples,)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    # The tolerance keeps round-off from deciding ties (a constant shift, equal arrays).
    tol = 1e-12 * max(1.0, abs(observed))
    extreme = int(np.count_nonzero(np.abs(means - observed) >= abs(observed) - tol))
    p_value = (extreme + 1) / (resamples + 1)
    return Bootstrap(observed, float(low), float(high), p_value, len(diffs), resamples)
