"""PassOrNot@k and Accuracy@k against hand-computed cases and a brute-force enumeration."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from llm_marl.baselines.passk import accuracy_at_k, pass_at_k


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 0, 1, 0.0),
        (5, 5, 1, 1.0),
        (5, 1, 1, 0.2),
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3, 2) / C(5, 2)
        (4, 1, 3, 1 - 1 / 4),  # 1 - C(3, 3) / C(4, 3)
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7, 5) / C(10, 5)
        (3, 2, 2, 1.0),  # n - c < k: every pair holds a pass
    ],
)
def test_pass_at_k_hand_computed(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_is_the_share_of_k_subsets_holding_a_pass() -> None:
    for n in range(1, 8):
        for c in range(n + 1):
            outcomes = [True] * c + [False] * (n - c)
            for k in range(1, n + 1):
                subsets = list(itertools.combinations(outcomes, k))
                brute = sum(any(s) for s in subsets) / len(subsets)
                assert pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12), (n, c, k)


def test_pass_at_k_stays_exact_for_many_samples() -> None:
    expected = 1 - math.comb(150, 10) / math.comb(200, 10)
    assert pass_at_k(200, 50, 10) == pytest.approx(expected, rel=1e-12)


def test_accuracy_at_k_hand_computed() -> None:
    assert accuracy_at_k([0.0, 0.5, 1.0], 1) == pytest.approx(0.5)
    # pairs: (0, .5) -> .5, (0, 1) -> 1, (.5, 1) -> 1: mean 2.5 / 3
    assert accuracy_at_k([0.0, 0.5, 1.0], 2) == pytest.approx(2.5 / 3)
    assert accuracy_at_k([0.2, 0.7], 2) == pytest.approx(0.7)


def test_accuracy_at_k_is_the_mean_best_score_over_k_subsets() -> None:
    rng = random.Random(0)
    for n in range(1, 8):
        scores = [rng.choice([0.0, 0.25, 0.5, 1.0, rng.random()]) for _ in range(n)]
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(scores, k))
            brute = sum(max(s) for s in subsets) / len(subsets)
            assert accuracy_at_k(scores, k) == pytest.approx(brute, abs=1e-12), (scores, k)


def test_bad_arguments_say_what_to_change() -> None:
    with pytest.raises(ValueError, match="k=3 needs at least 3 samples per task, got n=2"):
        pass_at_k(2, 1, 3)
    with pytest.raises(ValueError, match=r"c \(passing samples\) must be an int in \[0, n=4\]"):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError, match="k must be >= 1"):
        accuracy_at_k([1.0], 0)
    with pytest.raises(ValueError, match="finite"):
        accuracy_at_k([1.0, float("nan")], 1)
    with pytest.raises(TypeError, match="n must be an int"):
        pass_at_k(2.0, 1, 1)  # type: ignore[arg-type]
