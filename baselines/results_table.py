"""The results table of ``llm-marl reproduce``: one row per method, mean and 95% CI over seeds.

A pure function of the cells (:mod:`llm_marl.baselines.cells`): each column is a metric's mean
over seeds with its Student-t interval; "vs MAGRPO" is a paired bootstrap of the primary metric
over the (seed, task) pairs the method shares with the reference method. Rendered as Markdown
(``table.md``) and JSON (``table.json``); the HTML report renders the same rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llm_marl.baselines.cells import PRIMARY_METRIC, table_metrics
from llm_marl.baselines.stats import Bootstrap, MeanCI, mean_ci, paired_bootstrap

__all__ = [
    "LATENCY_NOTE",
    "REFERENCE",
    "ResultsTable",
    "Row",
    "column_label",
    "header_labels",
    "results_table",
    "seeds_text",
    "table_json",
    "table_markdown",
    "versus_text",
]

#: The method every other method is tested against.
REFERENCE = "magrpo"
LATENCY_NOTE = (
    "Latency: wall time of the slowest agent per turn, summed over turns: the agents of a "
    "generation round answer in one batched call and the round lasts as long as its slowest call "
    "(sequential: one round per agent and turn; discussion: two per turn); all tasks share the "
    "batch, so seconds per task are the summed rounds divided by the tasks. Measured the same way "
    "for every method."
)
_LABELS = {
    "total_reward": "total reward",
    "tokens_per_task": "tokens/task",
    "latency_s": "latency (s)",
    "cooperation_rate": "cooperation",
    "structure_rate": "structure",
    "syntax_rate": "syntax",
    "full_pass_rate": "full pass",
}


def column_label(metric: str) -> str:
    """The column heading of ``metric`` (``"tokens_per_task"`` -> ``"tokens/task"``)."""
    return _LABELS.get(metric, metric)


@dataclass(frozen=True)
class Row:
    """One method's line: its seeds, each metric's mean and CI, its test against the reference."""

    method: str
    kind: str
    protocol: str
    seeds: tuple[int, ...]
    values: dict[str, MeanCI]
    versus: Bootstrap | None


@dataclass(frozen=True)
class ResultsTable:
    """The rows of one table family with the labels and notes that make them readable."""

    table: str
    metrics: list[str]
    primary: str
    reference: str | None
    rows: list[Row]
    labels: dict[str, str]
    seeds: tuple[int, ...]
    notes: list[str]
    confidence: float = 0.95


def _joined(values: Sequence[Any]) -> str:
    return ", ".join(str(v) for v in dict.fromkeys(values))


def header_labels(cells: Sequence[Mapping[str, Any]], labels: Mapping[str, Any]) -> dict[str, str]:
    """What the table was measured on: model, env, split, samples, steps, seeds, machine.

    Read from the cells where they say it; ``labels`` adds or overrides any of them (keys as
    above: "model", "env", "split", "samples per task", "steps per trained method", "seeds",
    "machine"; a None or empty value keeps the default). The split and the machine are not in
    the cells: pass them, or they show as "not given".
    """
    steps = {c["method"]: c["train"]["steps"] for c in cells if c["kind"] == "trained"}
    seeds = sorted({c["seed"] for c in cells})
    derived = {
        "model": _joined([c["model"] for c in cells]) or "none",
        "env": _joined([c["env"] for c in cells]) or "none",
        "split": "not given",
        "samples per task": _joined([c["samples"] for c in cells]) or "none",
        "steps per trained method": (
            str(next(iter(steps.values())))
            if len(set(steps.values())) == 1
            else ", ".join(f"{m} {s}" for m, s in steps.items()) or "none trained"
        ),
        "seeds": f"{len(seeds)} ({_joined(seeds)})" if seeds else "none",
        "machine": "not given",
    }
    given = {key: str(value) for key, value in labels.items() if value not in (None, "")}
    return {**derived, **given}


def _known(value: float | None) -> bool:
    """A measured number: not None (not measured) and not NaN (nothing to score, e.g. every
    episode of a task had a sandbox error)."""
    return value is not None and not math.isnan(value)


def _mean_ci(values: Sequence[float | None], confidence: float) -> MeanCI:
    known = [v for v in values if _known(v)]
    return mean_ci(known, confidence) if known else MeanCI(math.nan, math.nan, math.nan, 0)


def _per_task(cells: Sequence[Mapping[str, Any]], metric: str) -> dict[tuple[int, str], float]:
    return {
        (c["seed"], t["task_id"]): t["metrics"][metric]
        for c in cells
        for t in c["tasks"]
        if _known(t["metrics"].get(metric))
    }


def _row(
    method: str,
    mine: Sequence[Mapping[str, Any]],
    reference: Sequence[Mapping[str, Any]] | None,
    metrics: Sequence[str],
    primary: str,
    resamples: int,
    confidence: float,
) -> Row:
    first = mine[0] if mine else {"kind": "n/a", "protocol": "n/a"}
    versus = None
    if reference is not None:
        a, b = _per_task(mine, primary), _per_task(reference, primary)
        pairs = sorted(a.keys() & b.keys())
        if pairs:
            versus = paired_bootstrap([a[p] for p in pairs], [b[p] for p in pairs],
                                      resamples=resamples, confidence=confidence)  # fmt: skip
    values = {m: _mean_ci([c["metrics"][m] for c in mine], confidence) for m in metrics}
    seeds = tuple(c["seed"] for c in mine)
    return Row(method, first["kind"], first["protocol"], seeds, values, versus)


def _notes(primary: str, reference: str | None, resamples: int, confidence: float) -> list[str]:
    level = f"{confidence * 100:g}%"
    notes = [
        f"Each entry: mean over seeds [{level} confidence interval, Student t with n - 1 "
        "degrees of freedom over the seeds]; n/a where a row has one seed."
    ]
    if reference is not None:
        notes.append(
            f"vs {reference}: mean difference in {column_label(primary)} over the (seed, task) "
            f"pairs both methods share [{level} percentile interval], and the two-sided p-value "
            f"of a paired bootstrap ({resamples} resamples of the pairs) of that difference."
        )
    return [*notes, LATENCY_NOTE]


def results_table(
    cells: Sequence[Mapping[str, Any]],
    *,
    table: str,
    methods: Sequence[str],
    labels: Mapping[str, Any] | None = None,
    reference: str = REFERENCE,
    resamples: int = 10_000,
    confidence: float = 0.95,
) -> ResultsTable:
    """The rows of ``table`` for ``methods`` (in that order) from the cells of that table.

    A method with fewer seeds than the others keeps its row, which says how many it has; a
    method without cells shows "n/a". The "vs" column appears only when ``reference`` is
    among ``methods``.
    """
    unknown = sorted({c["method"] for c in cells} - set(methods))
    if unknown:
        raise ValueError(
            f"cells of method {unknown[0]!r} but methods={list(methods)}; add it to methods "
            "or leave its cells out"
        )
    wrong = [c for c in cells if c["table"] != table]
    if wrong:
        raise ValueError(
            f"a cell of {wrong[0]['method']!r} seed {wrong[0]['seed']} is of table "
            f"{wrong[0]['table']!r}, not {table!r}; render each table from its own cells"
        )
    ks = sorted({k for c in cells for k in c["k"]}) or [1]
    metrics = table_metrics(table, ks)
    primary = PRIMARY_METRIC[table]
    by_method = {
        m: sorted((c for c in cells if c["method"] == m), key=lambda c: c["seed"]) for m in methods
    }
    ref = reference if reference in methods else None
    rows = [
        _row(method, by_method[method], by_method[ref] if ref not in (None, method) else None,
             metrics, primary, resamples, confidence)
        for method in methods
    ]  # fmt: skip
    notes = _notes(primary, ref, resamples, confidence)
    seeds = tuple(sorted({c["seed"] for c in cells}))
    all_labels = header_labels(cells, labels or {})
    return ResultsTable(table, metrics, primary, ref, rows, all_labels, seeds, notes, confidence)


def seeds_text(row: Row, total: int) -> str:
    """``"3"``, or ``"2 of 3"`` for a row that misses seeds."""
    return str(len(row.seeds)) if len(row.seeds) >= total else f"{len(row.seeds)} of {total}"


def versus_text(row: Row, reference: str | None) -> str:
    """``"+0.120 [+0.010, +0.230], p=0.031"`` (``p<0.001`` below that); "—" for the reference
    itself; "n/a" without shared (seed, task) pairs."""
    if row.method == reference:
        return "—"
    if row.versus is None:
        return "n/a"
    v = row.versus
    p = "p<0.001" if v.p_value < 0.001 else f"p={v.p_value:.3f}"
    return f"{v.diff:+.3f} [{v.low:+.3f}, {v.high:+.3f}], {p}"


def table_markdown(result: ResultsTable) -> str:
    """The table as Markdown: a title, the labels line, the rows and the notes."""
    head = ["method", "kind (protocol)", "seeds", *map(column_label, result.metrics)]
    if result.reference is not None:
        head.append(f"vs {result.reference} ({column_label(result.primary)})")
    lines = [
        f"## {result.table.capitalize()} results",
        "",
        " · ".join(f"{key}: {value}" for key, value in result.labels.items()),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    for row in result.rows:
        cells = [
            row.method,
            f"{row.kind} ({row.protocol})",
            seeds_text(row, len(result.seeds)),
            *(row.values[m].format() for m in result.metrics),
        ]
        if result.reference is not None:
            cells.append(versus_text(row, result.reference))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *(f"- {note}" for note in result.notes)]
    return "\n".join(lines) + "\n"


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value  # JSON has no NaN


def table_json(result: ResultsTable) -> dict[str, Any]:
    """The table as a JSON-ready object (undefined bounds as null)."""
    rows = []
    for row in result.rows:
        v = row.versus
        rows.append(
            {
                "method": row.method,
                "kind": row.kind,
                "protocol": row.protocol,
                "seeds": list(row.seeds),
                "metrics": {
                    m: {
                        "mean": _number(ci.mean),
                        "low": _number(ci.low),
                        "high": _number(ci.high),
                        "n": ci.n,
                    }
                    for m, ci in row.values.items()
                },
                "vs_reference": None
                if v is None
                else {
                    "diff": v.diff,
                    "low": v.low,
                    "high": v.high,
                    "p_value": v.p_value,
                    "pairs": v.n,
                    "resamples": v.resamples,
                },
            }
        )
    return {
        "table": result.table,
        "primary": result.primary,
        "reference": result.reference,
        "metrics": result.metrics,
        "labels": result.labels,
        "seeds": list(result.seeds),
        "rows": rows,
        "confidence": result.confidence,
        "notes": result.notes,
    }
