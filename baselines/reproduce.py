"""``llm-marl reproduce``: every method of a baseline table, trained or not, on several seeds.

A table config (YAML, see ``configs/paper/`` and ``configs/quick/``) names the env, the base
model, the methods, the seeds, one evaluation budget for all of them and the training settings
of the trained ones. Each (method, seed) is one *cell*: an untrained protocol is evaluated on
the base model; a registered algorithm is trained from the base model with that seed, then its
team is evaluated the way it was trained (``single`` for single-agent trainers, else
``parallel`` with its turns). Every cell uses :func:`~llm_marl.baselines.eval_run.evaluate_cell`
with the same :class:`~llm_marl.baselines.eval_run.EvalSettings`, so the table is
compute-matched by construction.

A finished cell is written at once (``cells/<method>/seed<k>.json``); a killed ``reproduce``
started again skips finished cells and resumes a half-trained one from its last checkpoint.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from llm_marl.baselines.cells import cell_path
from llm_marl.baselines.eval_run import EvalSettings
from llm_marl.baselines.protocols import PROTOCOLS
from llm_marl.checks import check_int

__all__ = [
    "TableConfig",
    "load_table_config",
    "method_kind",
    "table_config_path",
]

TABLES: tuple[str, ...] = ("writing", "coding")
CONFIG_ROOT = Path(__file__).resolve().parent.parent / "configs"


@dataclass
class TableConfig:
    """What one baseline table runs: the YAML file of ``llm-marl reproduce``."""

    table: str
    """``writing`` or ``coding``: which metrics the table shows."""
    env: str
    """Registered env id."""
    model: str = "embedded"
    """Base model of every method (``embedded``, ``tiny``, a folder or a hub id)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra env options (such as ``{"data": "trl-lib/tldr"}``)."""
    methods: list[str] = field(default_factory=lambda: [*PROTOCOLS, "grpo", "igrpo", "magrpo"])
    """Untrained protocols and registered algorithms, in table order."""
    seeds: int = 3
    """Seeds per method (0 .. seeds-1)."""
    eval: dict[str, Any] = field(default_factory=dict)
    """The evaluation budget: :class:`EvalSettings` fields (``samples``, ``ks``, ...)."""
    train: dict[str, Any] = field(default_factory=dict)
    """Settings of every trained method (fields of its config class, such as ``num_steps``)."""
    train_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-method settings over ``train`` (method -> fields)."""
    cross_play: dict[str, Any] | None = None
    """``{"method": "magrpo", "seeds": [0, 1]}``: pair agents trained on different seeds and
    the base model (a matrix); none: skip."""
    contribution: dict[str, Any] | None = None
    """``{"method": "magrpo", "seed": 0}``: replace each agent by an empty or a base answer;
    none: skip."""
    machine: str = ""
    """A label of the machine the committed results came from (for the table's header)."""

    def __post_init__(self) -> None:
        if self.table not in TABLES:
            raise ValueError(f"table must be one of {', '.join(TABLES)}, got {self.table!r}")
        check_int("seeds", self.seeds, 1)
        if not self.methods:
            raise ValueError("methods must name at least one method")
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods repeat a name: {self.methods}")
        for method in self.methods:
            method_kind(method)  # unknown names fail here, before anything runs
        unknown = set(self.train_overrides) - set(self.methods)
        if unknown:
            raise ValueError(f"train_overrides names methods not in methods: {sorted(unknown)}")
        self.eval_settings(0)  # validates the budget

    def eval_settings(self, seed: int) -> EvalSettings:
        """The evaluation budget with sampling seed ``seed``."""
        known = {f.name for f in fields(EvalSettings)}
        extra = set(self.eval) - known
        if extra:
            raise ValueError(
                f"eval settings {sorted(extra)} are unknown; known: {', '.join(sorted(known))}"
            )
        values = dict(self.eval)
        for name in ("ks", "task_ids"):
            if name in values:
                values[name] = tuple(values[name])
        return EvalSettings(**{**values, "seed": seed})

    def train_settings(self, method: str) -> dict[str, Any]:
        """The training settings of ``method``: ``train`` then its overrides."""
        return {**self.train, **self.train_overrides.get(method, {})}


def method_kind(method: str) -> str:
    """``protocol`` for an untrained protocol, ``trained`` for a registered algorithm."""
    if method in PROTOCOLS:
        return "protocol"
    from llm_marl.baselines.registry import algorithm

    try:
        algorithm(method)
    except (KeyError, ValueError) as error:
        raise ValueError(
            f"method {method!r} is neither a protocol ({', '.join(PROTOCOLS)}) nor a registered "
            f"algorithm: {error.args[0] if error.args else error}"
        ) from None
    return "trained"


def table_config_path(table: str, quick: bool) -> Path:
    """The shipped config of ``table``: ``configs/quick/`` with ``quick``, else
    ``configs/paper/``."""
    if table not in TABLES:
        raise ValueError(f"--table must be one of {', '.join(TABLES)}, got {table!r}")
    path = CONFIG_ROOT / ("quick" if quick else "paper") / f"{table}.yaml"
    if not path.is_file():
        raise ValueError(
            f"{path} is missing (the table configs ship with the source tree, not the wheel): "
            "pass --config FILE"
        )
    return path


def load_table_config(path: str | os.PathLike[str], **overrides: Any) -> TableConfig:
    """Read a table config from YAML; ``overrides`` (not None) replace its top-level keys."""
    import yaml

    text = Path(path).read_text(encoding="utf-8")
    values = yaml.safe_load(text) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a table config is a YAML mapping, got {type(values).__name__}")
    known = {f.name for f in fields(TableConfig)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(
            f"{path}: unknown keys {sorted(unknown)}; known: {', '.join(sorted(known))}"
        )
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TableConfig(**values)


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as JSON through a temporary file and a rename (never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(value, indent=1, allow_nan=True) + "\n", encoding="utf-8")
    os.replace(partial, path)


def pending_cells(results: Path, methods: Sequence[str], seeds: int) -> list[tuple[str, int]]:
    """The (method, seed) cells without a finished file, in table order."""
    return [(m, s) for m in methods for s in range(seeds) if not cell_path(results, m, s).is_file()]
