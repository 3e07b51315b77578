"""The evaluation tables' metrics, from the played episodes of each task (no torch).

Coding tasks (the env's measures carry ``tests_total``): PassOrNot@k and Accuracy@k for each k
(:mod:`~llm_marl.baselines.passk`), the cooperation rate (main calls every helper and is not a
thin wrapper around one), the structure rate (every function defined and returning), the syntax
rate (the joint program parses), the full-pass rate and the total reward. Writing tasks: the
total reward and its Structure / Coherence / Consistency levels. Both: tokens generated per
task (mean over its episodes) and ``latency_s``, the generation wall time per task (the batch's
summed rounds divided by its tasks; see :mod:`~llm_marl.baselines.protocols`).

Episodes the code sandbox could not judge are left out of the scores and counted
(``sandbox_error_episodes``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from llm_marl.baselines.passk import accuracy_at_k, pass_at_k
from llm_marl.baselines.protocols import EpisodeResult, PlayResult

__all__ = [
    "CODING_METRICS",
    "WRITING_METRICS",
    "metric_names",
    "score_tasks",
    "summarize",
    "table_family",
]

WRITING_METRICS: tuple[str, ...] = ("total_reward", "structure", "coherence", "consistency")
CODING_METRICS: tuple[str, ...] = (
    "cooperation_rate",
    "structure_rate",
    "syntax_rate",
    "full_pass_rate",
    "total_reward",
)
_COST_METRICS = ("tokens_per_task", "latency_s")


def table_family(result: PlayResult) -> str:
    """``"coding"`` when the env reports test counts, else ``"writing"``."""
    for task in result.tasks:
        for episode in task.episodes:
            if "tests_total" in episode.measures:
                return "coding"
    return "writing"


def metric_names(family: str, ks: Sequence[int]) -> list[str]:
    """The metric keys of a table family, in table order."""
    if family == "coding":
        return [
            *(f"pass@{k}" for k in ks),
            *(f"accuracy@{k}" for k in ks),
            *CODING_METRICS,
            *_COST_METRICS,
        ]
    if family == "writing":
        return [*WRITING_METRICS, *_COST_METRICS]
    raise ValueError(f"unknown table family {family!r}; families are coding, writing")


def score_tasks(result: PlayResult, ks: Sequence[int], family: str) -> list[dict[str, Any]]:
    """One row per task: ``task_id``, ``metrics`` and the scored ``samples`` (answers of the
    final turn, reward and terms), in the cell format of the results folder."""
    latency = result.generation_seconds / max(len(result.tasks), 1)
    rows = []
    for task in result.tasks:
        judged = [e for e in task.episodes if not e.sandbox_error]
        metrics = _writing(judged) if family == "writing" else _coding(judged, ks)
        metrics["tokens_per_task"] = statistics.fmean(e.tokens for e in task.episodes)
        metrics["latency_s"] = latency
        metrics["sandbox_error_episodes"] = float(len(task.episodes) - len(judged))
        samples = [
            {
                "answers": e.answers[-1],
                "reward": e.reward,
                "terms": e.terms,
                "turns": len(e.answers),
            }
            for e in task.episodes
        ]
        rows.append({"task_id": task.task_id, "metrics": metrics, "samples": samples})
    return rows


def summarize(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The mean of every metric over the tasks that have it (NaN ones left out)."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row["metrics"]))
    out = {}
    for name in names:
        values = [float(r["metrics"][name]) for r in rows if name in r["metrics"]]
        finite = [v for v in values if not math.isnan(v)]
        out[name] = statistics.fmean(finite) if finite else math.nan
    if "sandbox_error_episodes" in out:
        out["sandbox_error_episodes"] = sum(
            float(r["metrics"].get("sandbox_error_episodes", 0.0)) for r in rows
        )
    return out


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def _writing(episodes: Sequence[EpisodeResult]) -> dict[str, float]:
    out = {"total_reward": _mean([e.reward for e in episodes])}
    for level in WRITING_METRICS[1:]:
        out[level] = _mean([float(e.terms.get(level, 0.0)) for e in episodes])
    return out


def _coding(episodes: Sequence[EpisodeResult], ks: Sequence[int]) -> dict[str, float]:
    n = len(episodes)
    fractions = [_tests_fraction(e.measures) for e in episodes]
    passes = sum(1 for e in episodes if _all_pass(e.measures))
    out: dict[str, float] = {}
    for k in ks:  # fewer judged samples than k (sandbox errors): the best of all of them
        out[f"pass@{k}"] = pass_at_k(n, passes, min(k, n)) if n else math.nan
    for k in ks:
        out[f"accuracy@{k}"] = accuracy_at_k(fractions, min(k, n)) if n else math.nan
    out["cooperation_rate"] = _mean([float(_cooperates(e.measures)) for e in episodes])
    out["structure_rate"] = _mean([float(_structured(e.measures)) for e in episodes])
    out["syntax_rate"] = _mean([float(e.terms.get("syntax", 0.0) > 0) for e in episodes])
    out["full_pass_rate"] = passes / n if n else math.nan
    out["total_reward"] = _mean([e.reward for e in episodes])
    return out


def _tests_fraction(measures: Mapping[str, Any]) -> float:
    total = int(measures.get("tests_total", 0) or 0)
    return int(measures.get("tests_passed", 0) or 0) / total if total else 0.0


def _all_pass(measures: Mapping[str, Any]) -> bool:
    total = int(measures.get("tests_total", 0) or 0)
    return total > 0 and int(measures.get("tests_passed", 0) or 0) == total


def _helpers(measures: Mapping[str, Any]) -> list[str]:
    """The helper names of a coding verdict (``aux``, or ``aux_0``, ``aux_1``, ...)."""
    return [k[len("calls_") :] for k in measures if k.startswith("calls_")]


def _cooperates(measures: Mapping[str, Any]) -> bool:
    helpers = _helpers(measures)
    return (
        bool(helpers)
        and all(measures.get(f"calls_{h}") for h in helpers)
        and not measures.get("thin_wrapper")
    )


def _structured(measures: Mapping[str, Any]) -> bool:
    helpers = [k[: -len("_defined")] for k in measures if k.endswith("_defined")]
    return bool(helpers) and all(
        measures.get(f"{h}_defined") and measures.get(f"{h}_returns") for h in helpers
    )
