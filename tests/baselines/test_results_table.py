"""The results table: its numbers against hand computation, its Markdown and JSON."""

from __future__ import annotations

import copy
import json
import math
import statistics

import pytest
from synthetic_cells import make_cells

from llm_marl.baselines.results_table import results_table, table_json, table_markdown

METHODS = ["magrpo", "grpo", "parallel"]
T_975 = {2: 12.706, 3: 4.303}  # Student t quantiles, printed tables


@pytest.fixture(scope="module")
def cells() -> list[dict]:
    """Three methods on seeds 0-2 of the writing table; grpo's seed 2 did not finish."""
    return make_cells("writing", seeds=3, missing=("grpo", 2))


def _by_hand(cells: list[dict], method: str, metric: str) -> tuple[float, float]:
    values = [c["metrics"][metric] for c in cells if c["method"] == method]
    half = T_975[len(values)] * statistics.stdev(values) / math.sqrt(len(values))
    return statistics.fmean(values), half


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("metric", ["total_reward", "coherence", "latency_s"])
def test_means_and_intervals_match_hand_computation(cells: list, method: str, metric: str) -> None:
    row = next(
        r for r in results_table(cells, table="writing", methods=METHODS).rows if r.method == method
    )
    mean, half = _by_hand(cells, method, metric)
    ci = row.values[metric]
    assert ci.mean == pytest.approx(mean)
    assert (ci.low, ci.high) == pytest.approx((mean - half, mean + half), abs=2e-3)


def test_the_paired_test_uses_the_shared_seed_and_task_pairs(cells: list) -> None:
    rows = results_table(cells, table="writing", methods=METHODS, resamples=2000).rows
    grpo = rows[1]
    assert rows[0].versus is None and grpo.seeds == (0, 1)
    # grpo lacks seed 2: the pairs are seeds 0 and 1, four tasks each.
    diffs = [
        g["metrics"]["total_reward"] - m["metrics"]["total_reward"]
        for gc in cells
        if gc["method"] == "grpo"
        for mc in cells
        if mc["method"] == "magrpo" and mc["seed"] == gc["seed"]
        for g, m in zip(gc["tasks"], mc["tasks"], strict=True)
    ]
    assert grpo.versus is not None and grpo.versus.n == 8
    assert grpo.versus.diff == pytest.approx(statistics.fmean(diffs))
    assert grpo.versus.low <= grpo.versus.diff <= grpo.versus.high
    assert grpo.versus.p_value < 0.01  # grpo's offset is 0.3 below magrpo's on every task


def test_the_markdown_labels_the_table_honestly(cells: list) -> None:
    labels = {"split": "test", "machine": "2-core CPU", "model": ""}  # "": keep the cells' model
    text = table_markdown(results_table(cells, table="writing", methods=METHODS, labels=labels))
    assert "model: embedded · env: tldr_v0 · split: test · samples per task: 1" in text
    assert "steps per trained method: 6 · seeds: 3 (0, 1, 2) · machine: 2-core CPU" in text
    head, rule, magrpo, grpo, parallel = text.split("\n")[4:9]
    assert head.startswith("| method | kind (protocol) | seeds | total reward | structure |")
    assert head.endswith("| tokens/task | latency (s) | vs magrpo (total reward) |")
    assert rule.count("---") == 10
    assert magrpo.startswith("| magrpo | trained (parallel) | 3 | ") and magrpo.endswith(" — |")
    assert grpo.startswith("| grpo | trained (single) | 2 of 3 | ")
    assert parallel.startswith("| parallel | protocol (parallel) | 3 | ")
    assert ", p<0.001 |" in parallel
    assert "wall time of the slowest agent per turn, summed over turns" in text
    assert "Student t" in text and "paired bootstrap (10000 resamples of the pairs)" in text


def test_without_magrpo_there_is_no_comparison_and_one_seed_has_no_interval() -> None:
    cells = [c for c in make_cells("coding", seeds=1) if c["method"] != "magrpo"]
    result = results_table(cells, table="coding", methods=["parallel", "grpo"])
    text = table_markdown(result)
    assert result.reference is None and "vs magrpo" not in text
    assert "| pass@1 | pass@3 | accuracy@1 | accuracy@3 | cooperation |" in text
    assert [r.method for r in result.rows] == ["parallel", "grpo"]
    assert " [n/a] |" in text and "n/a where a row has one seed" in text


def test_the_json_has_null_for_undefined_bounds(cells: list) -> None:
    one_seed = [c for c in cells if c["seed"] == 0]
    data = table_json(results_table(one_seed, table="writing", methods=METHODS, resamples=200))
    json.dumps(data, allow_nan=False)  # no NaN in the file
    magrpo = data["rows"][0]
    assert magrpo["metrics"]["total_reward"]["low"] is None
    assert magrpo["metrics"]["total_reward"]["mean"] == pytest.approx(
        one_seed[0]["metrics"]["total_reward"]
    )
    assert data["rows"][1]["vs_reference"]["pairs"] == 4


def test_nan_and_null_metrics_count_as_not_measured(cells: list) -> None:
    """A task with nothing to score (NaN) or a metric not measured (None) is left out."""
    changed = copy.deepcopy(cells)
    grpo0 = next(c for c in changed if (c["method"], c["seed"]) == ("grpo", 0))
    grpo0["tasks"][0]["metrics"]["total_reward"] = math.nan
    grpo0["tasks"][1]["metrics"]["total_reward"] = None
    grpo0["metrics"]["latency_s"] = math.nan
    rows = results_table(changed, table="writing", methods=METHODS, resamples=200).rows
    assert rows[1].versus is not None and rows[1].versus.n == 6  # 8 pairs, 2 not measured
    assert rows[1].values["latency_s"].n == 1  # seed 1 only
    seed1 = next(c for c in changed if (c["method"], c["seed"]) == ("grpo", 1))
    assert rows[1].values["latency_s"].format() == f"{seed1['metrics']['latency_s']:.3f} [n/a]"


def test_a_method_without_cells_keeps_its_row(cells: list) -> None:
    result = results_table(cells, table="writing", methods=[*METHODS, "igrpo"])
    assert "| igrpo | n/a (n/a) | 0 of 3 | n/a |" in table_markdown(result)


def test_cells_of_another_method_or_table_are_refused(cells: list) -> None:
    with pytest.raises(ValueError, match="cells of method 'parallel' but methods="):
        results_table(cells, table="writing", methods=["magrpo", "grpo"])
    with pytest.raises(ValueError, match="is of table 'writing', not 'coding'"):
        results_table(cells, table="coding", methods=METHODS)
