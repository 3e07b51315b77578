"""The cells of ``llm-marl reproduce``: train when the method is an algorithm, then evaluate.

:func:`run_table` runs every pending cell of a :class:`~llm_marl.baselines.reproduce.TableConfig`
(a progress bar per method), then the optional cross-play matrix and leave-one-agent-out table,
and returns the finished cells. See :mod:`llm_marl.baselines.reproduce` for the layout.
"""

from __future__ import annotations

import gc
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llm_marl.baselines.cells import cell_path
from llm_marl.baselines.eval_run import EvalSettings, evaluate_cell, protocol_env
from llm_marl.baselines.protocols import Seat, seats_for
from llm_marl.baselines.reproduce import (
    TableConfig,
    method_kind,
    pending_cells,
    write_json,
)
from llm_marl.baselines.run_watch import RunWarning

__all__ = ["primary_metric", "run_table"]

RUNS_DIR = "runs"


def primary_metric(table: str) -> str:
    """The metric the bootstrap test and the cross-play matrix compare."""
    return "pass@1" if table == "coding" else "total_reward"


class _Cells:
    """Runs cells; holds the base team (loaded once) and each trained team's folder."""

    def __init__(self, config: TableConfig, results: Path, progress: bool) -> None:
        self.config, self.results, self.progress = config, results, progress
        self._base: Any = None

    def base(self) -> Any:
        from llm_marl.models import load_policy

        if self._base is None:
            self._base = load_policy(self.config.model)
        return self._base

    # ----------------------------------------------------------------- protocols
    def protocol_cell(self, method: str, seed: int) -> dict[str, Any]:
        env = protocol_env(self.config.env, method, env_kwargs=self.config.env_kwargs)
        seats = seats_for(self.base(), env.possible_agents)
        return self._evaluate(env, seats, method, seed, f"{method} seed {seed}")

    # ----------------------------------------------------------------- trained
    def trained_cell(self, method: str, seed: int) -> dict[str, Any]:
        trainer = self._trainer(method, seed)
        start = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - start
        if trainer.stop_requested:  # Ctrl-C in the last step: the run finished, the table stops
            raise KeyboardInterrupt
        protocol = "single" if trainer.env_options().get("single_agent") else "parallel"
        env = protocol_env(
            self.config.env,
            protocol,
            env_kwargs=self.config.env_kwargs,
            num_turns=trainer.config.num_turns,
        )
        seats = seats_for(trainer.team, env.possible_agents)
        cell = self._evaluate(env, seats, protocol, seed, f"{method} seed {seed} eval")
        cell["train"] = {
            "metrics": [_curve_point(r) for r in result.metrics],
            "seconds": seconds,
            "steps": trainer.config.num_steps,
            "run_dir": str(result.run_dir),
        }
        del trainer, seats
        gc.collect()
        return cell

    def _trainer(self, method: str, seed: int) -> Any:
        from llm_marl.baselines.checkpoint import latest_checkpoint
        from llm_marl.baselines.registry import algorithm

        spec = algorithm(method)
        runs = self.results / RUNS_DIR
        name = f"{method}-seed{seed}"
        resumable = latest_checkpoint(runs / name / "checkpoints") is not None
        settings = {
            **self.config.train_settings(method),
            "env": self.config.env,
            "env_kwargs": dict(self.config.env_kwargs),
            "model": self.config.model,
            "seed": seed,
            "output_dir": str(runs),
            "run_name": name,
            "progress": self.progress,
            "resume": resumable,
            "overwrite": not resumable and (runs / name).exists(),
        }
        known = {f for f in spec.config_class.__dataclass_fields__}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"train settings {unknown} are not settings of {method}")
        return spec.trainer_class()(spec.config_class(**settings))

    # ----------------------------------------------------------------- shared
    def _evaluate(
        self, env: Any, seats: Mapping[str, Seat], protocol: str, seed: int, label: str
    ) -> dict[str, Any]:
        settings = self.config.eval_settings(seed)
        return evaluate_cell(
            env, seats, protocol, settings, progress=label if self.progress else None
        )


def run_table(config: TableConfig, results: Path, *, progress: bool = True) -> list[dict[str, Any]]:
    """Run every pending cell of ``config`` into ``results``; all finished cells, in order."""
    from tqdm.auto import tqdm

    results.mkdir(parents=True, exist_ok=True)
    runner = _Cells(config, results, progress)
    todo = pending_cells(results, config.methods, config.seeds)
    for method in config.methods:
        seeds = [s for m, s in todo if m == method]
        kind = method_kind(method)
        with tqdm(
            total=config.seeds,
            initial=config.seeds - len(seeds),
            desc=f"{method} ({kind})",
            unit="seed",
            disable=not progress,
        ) as bar:
            for seed in seeds:
                run = runner.protocol_cell if kind == "protocol" else runner.trained_cell
                cell = run(method, seed)
                write_json(
                    cell_path(results, method, seed), _cell(config, method, kind, seed, cell)
                )
                bar.update()
    for name, spec, run_extra in (
        ("cross_play", config.cross_play, _cross_play),
        ("contribution", config.contribution, _contribution),
    ):
        if not spec:
            continue
        method = str(spec.get("method", "magrpo"))
        if method in config.methods:
            run_extra(config, results, runner)
        else:
            warnings.warn(
                f"{name} skipped: its method {method!r} is not among the methods run "
                f"({', '.join(config.methods)})",
                RunWarning,
                stacklevel=2,
            )
    return [_read(cell_path(results, m, s)) for m in config.methods for s in range(config.seeds)]


def _cell(
    config: TableConfig, method: str, kind: str, seed: int, body: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "method": method,
        "kind": kind,
        "seed": seed,
        "table": config.table,
        "env": config.env,
        "model": config.model,
        "train": None,
        **body,
    }


def _curve_point(record: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("step", "team_reward_mean", "eval/team_reward_mean")
    return {k: record[k] for k in keys if k in record}


def _read(path: Path) -> dict[str, Any]:
    import json

    value = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(value, dict)
    return value


def _trained_team(results: Path, method: str, seed: int) -> Any:
    from llm_marl.baselines.eval_run import team_folder
    from llm_marl.models import load_policy

    return load_policy(str(team_folder(results / RUNS_DIR / f"{method}-seed{seed}")))


def _ablation_env(config: TableConfig, method: str) -> Any:
    from llm_marl.baselines.registry import algorithm

    spec = algorithm(method)
    turns = int(config.train_settings(method).get("num_turns", 1))
    if spec.config_class.algo == "grpo":
        raise ValueError("cross-play and contribution need a multi-agent method, not grpo")
    return protocol_env(config.env, "parallel", env_kwargs=config.env_kwargs, num_turns=turns)


def _cross_play(config: TableConfig, results: Path, runner: _Cells) -> None:
    """Each agent of ``method`` from every source (base, each seed's team) against the other
    agent from every source: ``crossplay.json``."""
    spec = dict(config.cross_play or {})
    method, seeds = str(spec.get("method", "magrpo")), list(spec.get("seeds", [0, 1]))
    path = results / "crossplay.json"
    if path.is_file():
        return
    env = _ablation_env(config, method)
    agents = list(env.possible_agents)
    if len(agents) != 2:
        raise ValueError(f"cross-play pairs two agents; {config.env} has {len(agents)}")
    sources: dict[str, Any] = {"base": runner.base()}
    sources.update({f"seed{s}": _trained_team(results, method, s) for s in seeds})
    metric = primary_metric(config.table)
    # Its own partner, sampling seed 0: the diagonal cells are the table's seed-0 cells.
    same = {"base": cell_path(results, "parallel", 0), "seed0": cell_path(results, method, 0)}
    matrix = []
    for row_name, row_team in sources.items():
        line = []
        for col_name, col_team in sources.items():
            if row_name == col_name and row_name in same and same[row_name].is_file():
                line.append(float(_read(same[row_name])["metrics"][metric]))
                continue
            seats = {agents[0]: _seat(row_team, agents[0]), agents[1]: _seat(col_team, agents[1])}
            label = f"cross-play {row_name} x {col_name}"
            line.append(_score(runner, env, seats, 0, label)[metric])
        matrix.append(line)
    write_json(
        path,
        {
            "method": method,
            "metric": metric,
            "row_agent": agents[0],
            "col_agent": agents[1],
            "sources": list(sources),
            "matrix": matrix,
        },
    )


def _contribution(config: TableConfig, results: Path, runner: _Cells) -> None:
    """Each agent of ``method`` (one seed) replaced by the empty answer or the base model's:
    ``contribution.json``."""
    spec = dict(config.contribution or {})
    method, seed = str(spec.get("method", "magrpo")), int(spec.get("seed", 0))
    path = results / "contribution.json"
    if path.is_file():
        return
    env = _ablation_env(config, method)
    team = _trained_team(results, method, seed)
    full = seats_for(team, env.possible_agents)
    metric = primary_metric(config.table)
    without: dict[str, dict[str, float]] = {}
    for agent in env.possible_agents:
        base_seat = _seat(runner.base(), agent)
        without[agent] = {
            "empty": _score(runner, env, {**full, agent: Seat(None)}, seed, f"{agent} empty")[
                metric
            ],
            "base": _score(runner, env, {**full, agent: base_seat}, seed, f"{agent} base")[metric],
        }
    full_score = float(_read(cell_path(results, method, seed))["metrics"][metric])
    write_json(
        path,
        {"method": method, "seed": seed, "metric": metric, "full": full_score, "without": without},
    )


def _seat(team: Any, agent: str) -> Seat:
    return seats_for(team, [agent])[agent]


def _score(
    runner: _Cells, env: Any, seats: Mapping[str, Seat], seed: int, label: str
) -> dict[str, float]:
    settings: EvalSettings = runner.config.eval_settings(seed)
    cell = evaluate_cell(
        env, seats, "parallel", settings, progress=label if runner.progress else None
    )
    metrics: dict[str, float] = cell["metrics"]
    return metrics
