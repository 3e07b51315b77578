"""The results plot: training curves averaged over seeds, and a PNG even for sparse tables."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic_cells import make_cells

from llm_marl.baselines.results_plot import plot_results, training_curves
from llm_marl.baselines.results_table import results_table


def test_curves_average_the_seeds_at_each_step() -> None:
    cells = make_cells("writing", seeds=2, steps=3)
    cells[0]["train"]["metrics"].append({"step": 4, "team_reward_mean": 9.0})  # magrpo seed 0
    cells[1]["train"]["metrics"][0]["team_reward_mean"] = None  # seed 1 logged no reward
    curves = training_curves(cells, ["parallel", "grpo", "magrpo"])
    assert list(curves) == ["grpo", "magrpo"]  # protocols have no training
    # synthetic: offset + 0.05 * step + 0.01 * seed; magrpo's offset is 0.5
    steps, rewards = zip(*curves["magrpo"], strict=True)
    assert steps == (1, 2, 3, 4)
    assert rewards == pytest.approx([0.55, (0.6 + 0.61) / 2, (0.65 + 0.66) / 2, 9.0])


def test_a_table_without_trained_methods_or_cells_still_plots(tmp_path: Path) -> None:
    cells = make_cells("coding", seeds=1)
    protocols = [c for c in cells if c["kind"] == "protocol"]
    result = results_table(protocols, table="coding", methods=["parallel", "igrpo"])
    path = plot_results(result, training_curves(protocols, ["parallel"]), tmp_path / "plot.png")
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
