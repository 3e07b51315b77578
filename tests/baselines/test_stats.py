"""The report's statistics against tables, closed forms and hand-computed cases."""

from __future__ import annotations

import math

import pytest

from llm_marl.baselines.stats import mean_ci, paired_bootstrap, t_cdf, t_quantile


@pytest.mark.parametrize(
    ("p", "df", "table"),
    [
        (0.975, 1, 12.706),
        (0.975, 2, 4.303),
        (0.975, 4, 2.776),
        (0.975, 30, 2.042),
        (0.995, 10, 3.169),
        (0.95, 5, 2.015),
        (0.975, 1000, 1.962),
    ],
)
def test_t_quantile_matches_the_printed_table(p: float, df: int, table: float) -> None:
    assert t_quantile(p, df) == pytest.approx(table, abs=5e-4)
    assert t_quantile(1 - p, df) == pytest.approx(-t_quantile(p, df))


@pytest.mark.parametrize("t", [-30.0, -2.0, -0.3, 0.0, 0.7, 5.0, 100.0])
def test_t_cdf_matches_the_closed_forms_of_one_and_two_degrees_of_freedom(t: float) -> None:
    assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)  # Cauchy
    assert t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-12)


def test_mean_ci_by_hand() -> None:
    """[1, 2, 3]: mean 2, sd 1, half-width t(0.975, 2) / sqrt(3) = 4.303 / 1.732 = 2.484."""
    ci = mean_ci([1.0, 2.0, 3.0])
    assert (ci.mean, ci.n) == (2.0, 3)
    assert (ci.low, ci.high) == pytest.approx((2 - 2.4843, 2 + 2.4843), abs=1e-3)
    assert ci.format() == "2.000 [-0.484, 4.484]"
    narrower = mean_ci([1.0, 2.0, 3.0], confidence=0.9)  # t(0.95, 2) = 2.920
    assert narrower.high - narrower.mean == pytest.approx(2.920 / math.sqrt(3), abs=1e-3)


def test_one_value_has_an_undefined_interval_and_no_value_is_an_error() -> None:
    ci = mean_ci([0.5])
    assert ci.mean == 0.5 and math.isnan(ci.low) and math.isnan(ci.high)
    assert ci.format() == "0.500 [n/a]"
    with pytest.raises(ValueError, match="mean_ci of no values"):
        mean_ci([])
    with pytest.raises(ValueError, match="confidence=95"):
        mean_ci([1.0, 2.0], confidence=95)


def test_identical_samples_differ_by_nothing_with_p_one() -> None:
    result = paired_bootstrap([0.1, 0.5, 0.9, 0.3], [0.1, 0.5, 0.9, 0.3], resamples=500)
    assert (result.diff, result.low, result.high, result.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_a_constant_shift_collapses_the_interval_and_p_is_the_floor() -> None:
    a = [0.2, 0.4, 0.6, 0.8, 1.0]
    result = paired_bootstrap([x + 0.25 for x in a], a, resamples=999)
    assert (result.diff, result.low, result.high) == pytest.approx((0.25, 0.25, 0.25))
    assert result.p_value == pytest.approx(1 / 1000)  # no resample reaches the null


def test_two_pairs_by_hand() -> None:
    """Differences [0, 2]: resampled means 0, 1, 2 with chances 1/4, 1/2, 1/4; shifted to the
    null, 0 and 2 are as far from 0 as the observed 1: p = 1/2; the 95% interval is [0, 2]."""
    result = paired_bootstrap([1.0, 3.0], [1.0, 1.0], resamples=10_000, seed=3)
    assert result.diff == 1.0 and result.n == 2
    assert (result.low, result.high) == (0.0, 2.0)
    assert result.p_value == pytest.approx(0.5, abs=0.03)


def test_the_bootstrap_is_seeded() -> None:
    a, b = [0.3, 0.9, 0.4, 0.7, 0.1, 0.8], [0.2, 0.5, 0.6, 0.3, 0.1, 0.4]
    assert paired_bootstrap(a, b, seed=7) == paired_bootstrap(a, b, seed=7)
    assert paired_bootstrap(a, b, seed=7).p_value != paired_bootstrap(a, b, seed=8).p_value


def test_unpaired_or_empty_samples_are_errors() -> None:
    with pytest.raises(ValueError, match="3 values in a but 2 in b"):
        paired_bootstrap([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="no pairs"):
        paired_bootstrap([], [])
