"""The results folder of ``llm-marl reproduce``, written from its cells alone.

:func:`write_results` turns the cells (:mod:`llm_marl.baselines.cells`) into ``table.md`` and
``table.json`` (:mod:`results_table`), ``plot.png`` (:mod:`results_plot`), ``report.html``
(:mod:`results_html`), ``run_card.json`` and ``run_card.md`` (:mod:`run_card`) and
``tasks.jsonl`` (one line per cell and task: the raw per-task metrics). Optional inputs beside
the cells, rendered when present: ``crossplay.json`` and ``contribution.json``. No model and no
torch: the folder can be rebuilt from its cells at any time (:func:`rebuild_results`).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llm_marl.baselines.cells import CellError, load_cells, validate_cell
from llm_marl.baselines.results_html import report_html
from llm_marl.baselines.results_plot import plot_results, training_curves
from llm_marl.baselines.results_table import (
    ResultsTable,
    results_table,
    table_json,
    table_markdown,
)
from llm_marl.baselines.run_card import machine_summary, run_card, run_card_markdown
from llm_marl.baselines.run_log import write_atomically
from llm_marl.baselines.run_watch import RunWarning

__all__ = [
    "CONTRIBUTION_KEYS",
    "CROSSPLAY_KEYS",
    "gaps",
    "read_extra",
    "rebuild_results",
    "write_results",
]

CROSSPLAY_KEYS = ("method", "metric", "row_agent", "col_agent", "sources", "matrix")
CONTRIBUTION_KEYS = ("method", "metric", "full", "without")


def read_extra(path: Path, keys: Sequence[str]) -> dict[str, Any] | None:
    """The JSON object at ``path`` (None when the file is absent); it must have ``keys``."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise CellError(f"{path}: not valid JSON ({error})") from None
    missing = [key for key in keys if not isinstance(data, dict) or key not in data]
    if missing:
        raise CellError(f"{path}: no key {missing[0]!r} (the file needs {', '.join(keys)})")
    return dict(data)


def _check_crossplay(crossplay: Mapping[str, Any], path: Path) -> None:
    size = len(crossplay["sources"])
    matrix = crossplay["matrix"]
    if len(matrix) != size or any(len(row) != size for row in matrix):
        raise CellError(
            f"{path}: 'matrix' must be {size} x {size} (one row and column per source in "
            f"'sources'), got {len(matrix)} rows"
        )


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value  # JSON has no NaN


def _task_lines(cells: Sequence[Mapping[str, Any]]) -> str:
    rows = (
        {"method": c["method"], "seed": c["seed"], "task_id": t["task_id"]}
        | {name: _finite(value) for name, value in t["metrics"].items()}
        for c in cells
        for t in c["tasks"]
    )
    return "".join(json.dumps(row, sort_keys=False) + "\n" for row in rows)


def gaps(result: ResultsTable, cells: Sequence[Mapping[str, Any]]) -> list[str]:
    """What the table lacks: methods short of seeds, (seed, task) pairs missing for the test."""
    found = []
    for row in result.rows:
        if len(row.seeds) < len(result.seeds):
            missing = sorted(set(result.seeds) - set(row.seeds))
            found.append(
                f"{row.method} has no cell for seed {', '.join(map(str, missing))}: "
                f"its row holds {len(row.seeds)} of {len(result.seeds)} seeds"
            )
        tasks = sum(len(c["tasks"]) for c in cells if c["method"] == row.method)
        if row.versus is not None and row.versus.n < tasks:
            found.append(
                f"{row.method} shares {row.versus.n} of its {tasks} (seed, task) pairs "
                f"with {result.reference}: the paired test uses those only"
            )
    return found


def _plot(result: ResultsTable, curves: Mapping[str, Any], path: Path) -> Path | None:
    """``plot.png``, or None with a warning where matplotlib is not installed."""
    try:
        return plot_results(result, curves, path)
    except ModuleNotFoundError as error:
        if not (error.name or "").startswith("matplotlib"):
            raise
    warnings.warn(
        "matplotlib is not installed: the results have no plot.png (pip install matplotlib, "
        "or the train extra: pip install 'llm-marl[train]')",
        RunWarning,
        stacklevel=3,
    )
    return None


def write_results(
    results_dir: Path,
    cells: Sequence[Mapping[str, Any]],
    *,
    table: str,
    methods: Sequence[str],
    config: Mapping[str, Any],
    data_files: Sequence[Path] = (),
    model_dir: Path | None = None,
    labels: Mapping[str, Any] | None = None,
    resamples: int = 10_000,
) -> dict[str, Path]:
    """Writes the results folder's files from ``cells``; returns their paths by name (no
    ``plot.png`` where matplotlib is not installed).

    ``methods`` gives the rows and their order (MAGRPO, when among them, is the reference of
    the paired tests); ``config`` goes into the run card as given; ``data_files`` and the
    files of ``model_dir`` are hashed there. ``labels`` adds to or overrides the table's header
    (say ``{"split": "test"}``; the machine defaults to the run card's). Gaps in the cells
    (:func:`gaps`) are rendered as they are and each warned about as a ``RunWarning``.
    """
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    checked = [
        validate_cell(cell, f"cell {i} ({cell.get('method')!r})") for i, cell in enumerate(cells)
    ]
    crossplay = read_extra(results_dir / "crossplay.json", CROSSPLAY_KEYS)
    if crossplay is not None:
        _check_crossplay(crossplay, results_dir / "crossplay.json")
    contribution = read_extra(results_dir / "contribution.json", CONTRIBUTION_KEYS)
    card = run_card(config, data_files, model_dir)
    result = results_table(
        checked,
        table=table,
        methods=methods,
        labels={"machine": machine_summary(card["machine"]), **(labels or {})},
        resamples=resamples,
    )
    for gap in gaps(result, checked):
        warnings.warn(gap, RunWarning, stacklevel=2)
    paths = {
        name: results_dir / name
        for name in (
            "table.md",
            "table.json",
            "plot.png",
            "report.html",
            "run_card.json",
            "run_card.md",
            "tasks.jsonl",
        )
    }
    write_atomically(paths["table.md"], table_markdown(result))
    write_atomically(paths["table.json"], json.dumps(table_json(result), indent=2) + "\n")
    write_atomically(paths["run_card.json"], json.dumps(card, indent=2, default=str) + "\n")
    write_atomically(paths["run_card.md"], run_card_markdown(card))
    write_atomically(paths["tasks.jsonl"], _task_lines(checked))
    plot = _plot(result, training_curves(checked, methods), paths.pop("plot.png"))
    if plot is not None:
        paths["plot.png"] = plot
    page = report_html(
        result,
        checked,
        plot=plot,
        card=card,
        crossplay=crossplay,
        contribution=contribution,
    )
    write_atomically(paths["report.html"], page)
    return paths


def rebuild_results(
    results_dir: Path,
    *,
    methods: Sequence[str] | None = None,
    config: Mapping[str, Any] | None = None,
    labels: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Writes the results folder again from the cells already in it (a report without rerun).

    ``methods`` defaults to the methods of the cells, MAGRPO first; ``config`` to the one
    in the folder's run card; the data files and model folder named there are hashed again
    (those that no longer exist are left out).
    """
    results_dir = Path(results_dir)
    cells = load_cells(results_dir)
    if not cells:
        raise CellError(f"{results_dir / 'cells'}: no cells/<method>/seed<k>.json files")
    tables = sorted({c["table"] for c in cells})
    if len(tables) > 1:
        raise CellError(f"{results_dir}: cells of tables {tables}; one results folder per table")
    names = sorted({c["method"] for c in cells}, key=lambda m: (m != "magrpo", m))
    old_card = results_dir / "run_card.json"
    old = json.loads(old_card.read_text(encoding="utf-8")) if old_card.is_file() else {}
    model = (old.get("model") or {}).get("path")
    return write_results(
        results_dir,
        cells,
        table=tables[0],
        methods=list(methods) if methods is not None else names,
        config=config if config is not None else old.get("config", {}),
        data_files=[Path(p) for p in old.get("data", {}) if Path(p).is_file()],
        model_dir=Path(model) if model and Path(model).is_dir() else None,
        labels=labels,
    )
