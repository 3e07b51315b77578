"""The table metrics of played episodes: coding rates and pass@k, writing levels, costs."""

from __future__ import annotations

import math
from typing import Any

import pytest

from llm_marl.baselines.eval_metrics import metric_names, score_tasks, summarize, table_family
from llm_marl.baselines.passk import pass_at_k
from llm_marl.baselines.protocols import EpisodeResult, PlayResult, TaskResult


def _coding(
    passed: int,
    total: int,
    *,
    calls: bool = True,
    thin: bool = False,
    syntax: float = 0.5,
    aux: bool = True,
    tokens: int = 10,
) -> EpisodeResult:
    measures: dict[str, Any] = {
        "aux_defined": aux,
        "aux_returns": aux,
        "main_defined": True,
        "main_returns": True,
        "main_defines_aux": False,
        "calls_aux": calls,
        "thin_wrapper": thin,
        "tests_passed": passed,
        "tests_total": total,
    }
    terms = {"syntax": syntax, "tests": passed / total, "total": 1.0 + passed / total}
    return EpisodeResult(
        [{"helper_0": "h", "main_1": "m"}], [terms["total"]], terms, measures, tokens
    )


def test_coding_rows_hold_pass_at_k_accuracy_and_rates() -> None:
    episodes = [
        _coding(4, 4),  # full pass, cooperates
        _coding(2, 4, thin=True),  # thin wrapper: no cooperation
        _coding(0, 4, calls=False, syntax=0.0, aux=False),
        _coding(4, 4, tokens=30),
    ]
    result = PlayResult([TaskResult("t0", episodes)], generation_seconds=8.0, rounds=1)
    assert table_family(result) == "coding"
    (row,) = score_tasks(result, (1, 3), "coding")
    m = row["metrics"]
    assert m["pass@1"] == pytest.approx(0.5)
    assert m["pass@3"] == pytest.approx(pass_at_k(4, 2, 3)) == pytest.approx(1.0)
    # accuracy@3: best of 3 of [1, .5, 0, 1]; only the subset {.5, 0, ...} has no 1: 0 of 4
    assert m["accuracy@1"] == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert m["accuracy@3"] == pytest.approx(1.0)
    assert m["full_pass_rate"] == pytest.approx(0.5)
    assert m["cooperation_rate"] == pytest.approx(0.5)
    assert m["structure_rate"] == pytest.approx(0.75)
    assert m["syntax_rate"] == pytest.approx(0.75)
    assert m["tokens_per_task"] == pytest.approx(15.0)
    assert m["latency_s"] == pytest.approx(8.0)
    assert list(m)[: len(metric_names("coding", (1, 3)))] == metric_names("coding", (1, 3))


def test_sandbox_errors_are_left_out_of_the_scores_and_counted() -> None:
    broken = _coding(0, 4)
    broken.sandbox_error = True
    result = PlayResult([TaskResult("t0", [_coding(4, 4), broken])], 2.0, 1)
    (row,) = score_tasks(result, (1, 2), "coding")
    assert row["metrics"]["pass@1"] == 1.0  # judged on the one good episode
    assert row["metrics"]["pass@2"] == 1.0  # fewer judged samples than k: best of them all
    assert row["metrics"]["sandbox_error_episodes"] == 1.0


def test_writing_rows_and_the_mean_over_tasks() -> None:
    def episode(total: float, structure: float) -> EpisodeResult:
        terms = {"structure": structure, "coherence": 0.1, "consistency": 0.2, "total": total}
        return EpisodeResult([{"a": "x"}], [total], terms, {}, 4)

    result = PlayResult(
        [
            TaskResult("t0", [episode(1.0, 0.5), episode(2.0, 1.0)]),
            TaskResult("t1", [episode(0.0, 0.0), episode(0.0, 0.0)]),
        ],
        generation_seconds=4.0,
        rounds=2,
    )
    assert table_family(result) == "writing"
    rows = score_tasks(result, (1,), "writing")
    assert rows[0]["metrics"]["total_reward"] == 1.5
    assert rows[0]["metrics"]["structure"] == 0.75
    assert rows[0]["samples"][1] == {
        "answers": {"a": "x"},
        "reward": 2.0,
        "terms": result.tasks[0].episodes[1].terms,
        "turns": 1,
    }
    mean = summarize(rows)
    assert mean["total_reward"] == 0.75 and mean["latency_s"] == 2.0  # 4 s over 2 tasks
    assert mean["sandbox_error_episodes"] == 0.0


def test_summarize_skips_nan_and_unknown_families_are_refused() -> None:
    rows = [{"metrics": {"x": math.nan}}, {"metrics": {"x": 2.0}}]
    assert summarize(rows) == {"x": 2.0}
    with pytest.raises(ValueError, match="unknown table family 'poetry'"):
        metric_names("poetry", (1,))
