"""Seconds to write a results folder from cells of paper size (no model: reporting alone).

Usage: ``python benchmarks/results_report.py [--quick]``. Builds synthetic coding cells (7
methods, 5 seeds, 164 tasks each: HumanEval's size; ``--quick``: 3 seeds, 40 tasks), writes
the folder with ``write_results`` and prints one JSON object on its last line:
``{"cells": ..., "tasks_per_cell": ..., "seconds": ..., "table_seconds": ..., ...}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

# The tests' cell builder (tests/baselines/synthetic_cells.py), so both build the same cells.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "baselines"))
from synthetic_cells import METHODS, make_cell

from llm_marl.baselines.results import write_results
from llm_marl.baselines.results_table import results_table

EXTRA = ("igrpo", "single", "sequential", "discussion")  # copies of the built-in three


def cells(seeds: int, tasks: int) -> tuple[list[dict], list[str]]:
    """Cells of 7 methods: the synthetic three and four renamed copies of them."""
    out = [make_cell(m, s, table="coding", num_tasks=tasks) for m in METHODS for s in range(seeds)]
    for i, name in enumerate(EXTRA):
        source = list(METHODS)[i % len(METHODS)]
        out += [{**make_cell(source, s, table="coding", num_tasks=tasks), "method": name}
                for s in range(seeds)]  # fmt: skip
    return out, [*METHODS, *EXTRA]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds of 40 tasks")
    args = parser.parse_args()
    seeds, tasks = (3, 40) if args.quick else (5, 164)
    all_cells, methods = cells(seeds, tasks)
    start = time.perf_counter()
    results_table(all_cells, table="coding", methods=methods)
    table_seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        paths = write_results(Path(folder), all_cells, table="coding", methods=methods,
                              config={"benchmark": True})  # fmt: skip
        seconds = time.perf_counter() - start
        sizes = {name: path.stat().st_size for name, path in paths.items()}
    result = {
        "cells": len(all_cells),
        "tasks_per_cell": tasks,
        "methods": len(methods),
        "resamples": 10_000,
        "table_seconds": round(table_seconds, 3),
        "seconds": round(seconds, 3),
        "report_html_bytes": sizes["report.html"],
        "tasks_jsonl_bytes": sizes["tasks.jsonl"],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
