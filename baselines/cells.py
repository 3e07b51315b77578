"""The cells of ``llm-marl reproduce``: one JSON file per finished (method, seed).

The contract between the orchestration (which trains and evaluates) and the results report
(which only reads): ``<results>/cells/<method>/seed<k>.json`` holds one object::

    {
      "method": "magrpo",          # the method's name, as given to --methods
      "kind": "trained",           # "trained" or "protocol"
      "protocol": "parallel",      # at evaluation: single|parallel|sequential|discussion
      "seed": 0,
      "table": "writing",          # "writing" or "coding"
      "env": "tldr_v0",
      "model": "embedded",
      "samples": 4,                # samples per task
      "k": [1, 3],                 # the k of pass@k and accuracy@k (coding)
      "metrics": {...},            # means over tasks; the keys of TABLE_METRICS[table]
      "tasks": [                   # per task, in task order (the same ids for every cell)
        {"task_id": "tldr-test-0003",
         "metrics": {...},         # the same keys as the cell's metrics
         "samples": [{"answers": {"summary_0": "..."}, "reward": 1.1, "terms": {...}}]}
      ],
      "train": {"metrics": [{"step": 1, "team_reward_mean": 0.4}], "seconds": 120.5,
                "steps": 8},        # null for protocols
      "eval_seconds": 30.2
    }

Writing metrics: ``total_reward``, ``structure``, ``coherence``, ``consistency``,
``tokens_per_task``, ``latency_s``. Coding: ``pass@k`` and ``accuracy@k`` for every k,
``cooperation_rate``, ``structure_rate``, ``syntax_rate``, ``full_pass_rate``, ``total_reward``,
``tokens_per_task``, ``latency_s``. ``latency_s`` is the wall time of the slowest agent per turn,
summed over the turns of a task.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "CELL_KEYS",
    "PRIMARY_METRIC",
    "TABLES",
    "CellError",
    "cell_path",
    "load_cells",
    "table_metrics",
    "validate_cell",
]

#: The keys every cell has.
CELL_KEYS = (
    "method",
    "kind",
    "protocol",
    "seed",
    "table",
    "env",
    "model",
    "samples",
    "k",
    "metrics",
    "tasks",
    "train",
    "eval_seconds",
)
TABLES = ("writing", "coding")
KINDS = ("trained", "protocol")
#: The metric that ranks methods and that the paired test compares, per table.
PRIMARY_METRIC = {"writing": "total_reward", "coding": "pass@1"}
_WRITING = ("total_reward", "structure", "coherence", "consistency")
_CODING_RATES = ("cooperation_rate", "structure_rate", "syntax_rate", "full_pass_rate")
_COST = ("tokens_per_task", "latency_s")


class CellError(ValueError):
    """A cell file that breaks the format above; the message names the file and the key."""


def table_metrics(table: str, k: list[int] | tuple[int, ...] = (1,)) -> list[str]:
    """The metric keys every cell of ``table`` carries, in the order of the table's columns."""
    if table == "writing":
        return [*_WRITING, *_COST]
    if table == "coding":
        ks = sorted(set(k))
        return [
            *(f"pass@{i}" for i in ks),
            *(f"accuracy@{i}" for i in ks),
            *_CODING_RATES,
            "total_reward",
            *_COST,
        ]
    raise ValueError(f"table={table!r}: the results tables are {', '.join(TABLES)}")


def cell_path(results_dir: Path, method: str, seed: int) -> Path:
    """Where the cell of (``method``, ``seed``) lives: ``cells/<method>/seed<seed>.json``."""
    return results_dir / "cells" / method / f"seed{seed}.json"


def _fail(where: str, problem: str) -> CellError:
    return CellError(f"{where}: {problem}")


def _check_metrics(metrics: Any, keys: list[str], where: str) -> None:
    if not isinstance(metrics, Mapping):
        raise _fail(where, f"'metrics' must be an object of numbers, got {type(metrics).__name__}")
    missing = [key for key in keys if key not in metrics]
    if missing:
        raise _fail(where, f"'metrics' has no key {missing[0]!r} (needs {', '.join(keys)})")
    for key in keys:
        value = metrics[key]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise _fail(where, f"metric {key!r} must be a number or null, got {value!r}")


def validate_cell(cell: Any, where: str = "cell") -> dict[str, Any]:
    """``cell`` itself when it follows the format; else a :class:`CellError` naming ``where``."""
    if not isinstance(cell, dict):
        raise _fail(where, f"a cell is a JSON object, got {type(cell).__name__}")
    for key in CELL_KEYS:
        if key not in cell:
            raise _fail(where, f"the cell has no key {key!r} (a cell has {', '.join(CELL_KEYS)})")
    if cell["table"] not in TABLES:
        raise _fail(where, f"'table' is {cell['table']!r}; use one of {', '.join(TABLES)}")
    if cell["kind"] not in KINDS:
        raise _fail(where, f"'kind' is {cell['kind']!r}; use one of {', '.join(KINDS)}")
    if isinstance(cell["seed"], bool) or not isinstance(cell["seed"], int):
        raise _fail(where, f"'seed' must be an integer, got {cell['seed']!r}")
    k = cell["k"]
    if not isinstance(k, list) or not k or not all(isinstance(i, int) and i > 0 for i in k):
        raise _fail(where, f"'k' must be a non-empty list of positive integers, got {k!r}")
    keys = table_metrics(cell["table"], k)
    _check_metrics(cell["metrics"], keys, where)
    if not isinstance(cell["tasks"], list):
        raise _fail(where, "'tasks' must be a list of per-task results")
    for i, task in enumerate(cell["tasks"]):
        at = f"{where}, tasks[{i}]"
        if not isinstance(task, dict) or "task_id" not in task or "metrics" not in task:
            raise _fail(at, "a task needs 'task_id' and 'metrics' (and 'samples')")
        _check_metrics(task["metrics"], keys, at)
    train = cell["train"]
    if cell["kind"] == "trained" and not isinstance(train, dict):
        raise _fail(where, "a trained method's cell needs 'train' ({metrics, seconds, steps})")
    if isinstance(train, dict) and not isinstance(train.get("metrics", []), list):
        raise _fail(where, "'train.metrics' must be a list of per-step records")
    return cell


def load_cells(results_dir: Path) -> list[dict[str, Any]]:
    """Every cell under ``results_dir/cells/*/seed*.json``, validated, by method then seed."""
    folder = Path(results_dir) / "cells"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder}: no cells folder; run `llm-marl reproduce` with --output-dir "
            f"{results_dir} first, or give the results folder that holds cells/"
        )
    cells = []
    for path in sorted(folder.glob("*/seed*.json")):
        try:
            cell = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise CellError(f"{path}: not valid JSON ({error})") from None
        validate_cell(cell, str(path))
        if cell["method"] != path.parent.name or path.name != f"seed{cell['seed']}.json":
            raise CellError(
                f"{path}: holds method {cell['method']!r} seed {cell['seed']}; it belongs at "
                f"{cell_path(folder.parent, cell['method'], cell['seed'])}"
            )
        cells.append(cell)
    return sorted(cells, key=lambda c: (c["method"], c["seed"]))
