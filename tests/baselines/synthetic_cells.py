"""Synthetic cells of ``llm-marl reproduce`` in the format of ``llm_marl.baselines.cells``.

Each method has a fixed offset on every metric, each seed a small shift, each task its own
noise (seeded): the report's numbers are then known in advance. Run as a script to write a
results folder of made-up numbers (the screenshot in docs/evaluation.md)::

    python tests/baselines/synthetic_cells.py /tmp/synthetic-results
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

from llm_marl.baselines.cells import cell_path, table_metrics

#: Per method: (kind, protocol at evaluation, offset added to every metric).
METHODS = {
    "magrpo": ("trained", "parallel", 0.5),
    "grpo": ("trained", "single", 0.2),
    "parallel": ("protocol", "parallel", 0.0),
}
#: Metrics on another scale than rewards and rates (tokens, seconds).
SCALE = {"tokens_per_task": 300.0, "latency_s": 5.0}


def _answers(table: str, method: str, task: int) -> dict[str, str]:
    if table == "writing" and method == "magrpo":
        return {
            "summary_0": f"The poster asks whether to move cities for a job (post {task}).",
            "summary_1": "They weigh a higher salary against leaving friends and family, and "
            "decide to visit the new city for a week before accepting.",
        }
    if table == "writing":  # answers are untrusted: the report must escape them
        return {
            "summary_0": f"A short summary by {method} of post {task}.",
            "summary_1": f"The longer one <script>alert('{method}')</script> & more, post {task}.",
        }
    return {
        "helper_0": f"def helper(x):\n    return x + {task}\n",
        "main_0": "def solve(x):\n    return helper(x) * 2  # uses <helper>\n",
    }


def make_cell(
    method: str, seed: int, *, table: str = "writing", num_tasks: int = 4, steps: int = 6
) -> dict[str, Any]:
    """One cell: per-task metric = scale * (offset + 0.1 * seed + noise); the cell's metrics are
    their means."""
    kind, protocol, offset = METHODS[method]
    k = [1, 3] if table == "coding" else [1]
    keys = table_metrics(table, k)
    rng = random.Random(f"{method}-{seed}-{table}")
    tasks = []
    for t in range(num_tasks):
        metrics = {
            key: round(SCALE.get(key, 1.0) * (offset + 0.1 * seed + rng.uniform(0, 0.2)), 6)
            for key in keys
        }
        answers = _answers(table, method, t)
        terms = {key: metrics[key] for key in keys[:3]}
        tasks.append(
            {
                "task_id": f"{table}-test-{t:04d}",
                "metrics": metrics,
                "samples": [
                    {"answers": answers, "reward": metrics["total_reward"], "terms": terms}
                ],
            }
        )
    means = {key: sum(task["metrics"][key] for task in tasks) / num_tasks for key in keys}
    train = None
    if kind == "trained":
        curve = [
            {"step": s, "team_reward_mean": offset + 0.05 * s + 0.01 * seed}
            for s in range(1, steps + 1)
        ]
        train = {"metrics": curve, "seconds": 12.5, "steps": steps}
    return {
        "method": method,
        "kind": kind,
        "protocol": protocol,
        "seed": seed,
        "table": table,
        "env": "tldr_v0" if table == "writing" else "coophumaneval_v0",
        "model": "embedded",
        "samples": 1,
        "k": k,
        "metrics": means,
        "tasks": tasks,
        "train": train,
        "eval_seconds": 3.0,
    }


def make_cells(
    table: str = "writing", seeds: int = 3, missing: tuple[str, int] | None = None, **kwargs: Any
) -> list[dict[str, Any]]:
    """Every method of :data:`METHODS` on seeds 0..seeds-1, but the (method, seed) ``missing``."""
    return [
        make_cell(method, seed, table=table, **kwargs)
        for method in METHODS
        for seed in range(seeds)
        if (method, seed) != missing
    ]


def write_cells(results_dir: Path, cells: list[dict[str, Any]]) -> None:
    """Writes each cell at ``cells/<method>/seed<k>.json`` as the orchestration does."""
    for cell in cells:
        path = cell_path(results_dir, cell["method"], cell["seed"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cell, indent=1), encoding="utf-8")


if __name__ == "__main__":
    from llm_marl.baselines.results import write_results

    out = Path(sys.argv[1])
    cells = make_cells("writing", 3, missing=("grpo", 2), num_tasks=8, steps=20)
    write_cells(out, cells)
    (out / "crossplay.json").write_text(
        json.dumps(
            {
                "method": "magrpo",
                "metric": "total_reward",
                "row_agent": "summary_0",
                "col_agent": "summary_1",
                "sources": ["base", "seed0", "seed1"],
                "matrix": [[0.31, 0.42, 0.40], [0.45, 0.71, 0.66], [0.43, 0.64, 0.73]],
            }
        )
    )
    (out / "contribution.json").write_text(
        json.dumps(
            {
                "method": "magrpo",
                "metric": "total_reward",
                "full": 0.71,
                "without": {
                    "summary_0": {"empty": 0.22, "base": 0.52},
                    "summary_1": {"empty": 0.18, "base": 0.49},
                },
            }
        )
    )
    paths = write_results(
        out,
        cells,
        table="writing",
        methods=list(METHODS),
        config={"table": "writing", "synthetic": True},
        labels={"split": "test", "data": "SYNTHETIC cells (tests/baselines/synthetic_cells.py)"},
    )
    print(paths["report.html"])
