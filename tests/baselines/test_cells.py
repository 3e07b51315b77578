"""Reading the cells of ``llm-marl reproduce``: round trip, and errors that name file and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic_cells import make_cell, make_cells, write_cells

from llm_marl.baselines.cells import CellError, cell_path, load_cells, table_metrics, validate_cell


def test_load_cells_reads_back_what_the_orchestration_wrote(tmp_path: Path) -> None:
    cells = make_cells("coding", seeds=2, missing=("grpo", 1))
    write_cells(tmp_path, cells)
    loaded = load_cells(tmp_path)
    assert [(c["method"], c["seed"]) for c in loaded] == [
        ("grpo", 0),
        ("magrpo", 0),
        ("magrpo", 1),
        ("parallel", 0),
        ("parallel", 1),
    ]
    assert loaded[1] == make_cell("magrpo", 0, table="coding")


def test_coding_metrics_follow_k() -> None:
    assert table_metrics("coding", [3, 1]) == [
        "pass@1",
        "pass@3",
        "accuracy@1",
        "accuracy@3",
        "cooperation_rate",
        "structure_rate",
        "syntax_rate",
        "full_pass_rate",
        "total_reward",
        "tokens_per_task",
        "latency_s",
    ]
    with pytest.raises(ValueError, match="table='poetry': the results tables are writing, coding"):
        table_metrics("poetry")


def test_a_cell_without_a_key_names_the_file_and_the_key(tmp_path: Path) -> None:
    cell = make_cell("magrpo", 0)
    del cell["metrics"]
    write_cells(tmp_path, [cell])
    path = cell_path(tmp_path, "magrpo", 0)
    with pytest.raises(CellError, match=f"{path}: the cell has no key 'metrics'"):
        load_cells(tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["metrics"].pop("coherence"), "'metrics' has no key 'coherence'"),
        (lambda c: c["tasks"][1]["metrics"].pop("latency_s"), r"tasks\[1\]: 'metrics' has no"),
        (lambda c: c.update(kind="finetuned"), "'kind' is 'finetuned'; use one of trained"),
        (lambda c: c.update(train=None), "a trained method's cell needs 'train'"),
        (lambda c: c["metrics"].update(structure="high"), "metric 'structure' must be a number"),
        (lambda c: c.update(k=[]), "'k' must be a non-empty list"),
    ],
)
def test_broken_cells_are_refused(change: object, message: str) -> None:
    cell = make_cell("magrpo", 0)
    change(cell)  # type: ignore[operator]
    with pytest.raises(CellError, match=message):
        validate_cell(cell, "cells/magrpo/seed0.json")


def test_a_cell_filed_under_another_method_is_refused(tmp_path: Path) -> None:
    path = cell_path(tmp_path, "grpo", 0)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(make_cell("magrpo", 0)))
    with pytest.raises(CellError, match="holds method 'magrpo' seed 0; it belongs at"):
        load_cells(tmp_path)


def test_no_cells_folder_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no cells folder; run `llm-marl reproduce`"):
        load_cells(tmp_path)
