"""A run's ``config.yaml``: written at the start of training, read back by ``--resume``.

It holds the algorithm and every setting except the one-off ``resume`` and ``overwrite``.
Imports no torch, so the command line can read it before any model loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from llm_marl.baselines.config import RESUMABLE_CHANGES, TrainConfig

__all__ = ["CONFIG_FILE", "check_resumable", "dump_config", "saved_settings"]

CONFIG_FILE = "config.yaml"
_ONE_OFF = ("resume", "overwrite")


def dump_config(config: TrainConfig) -> str:
    """The text of ``config.yaml`` for ``config``."""
    values = {k: v for k, v in asdict(config).items() if k not in _ONE_OFF}
    return yaml.safe_dump({"algo": config.algo, **values}, sort_keys=False)


def saved_settings(run_dir: Path, algo: str) -> dict[str, Any]:
    """The settings a run saved in its ``config.yaml`` (empty when there is none); an error
    when the run belongs to another algorithm."""
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        return {}
    saved = yaml.safe_load(path.read_text()) or {}
    if saved.get("algo", algo) != algo:
        raise ValueError(
            f"{run_dir} is a {saved['algo']} run; resume it with --algo {saved['algo']}"
        )
    return {k: v for k, v in saved.items() if k not in ("algo", *_ONE_OFF)}


def check_resumable(config: TrainConfig, saved: Mapping[str, Any], run_dir: Path) -> None:
    """Refuse to resume with settings that would change the run's meaning (``saved``: the
    settings of the run's ``config.yaml``, from :func:`saved_settings`)."""
    current = asdict(config)
    changed = {
        k: (current[k], v)
        for k, v in saved.items()
        if k in current and k not in RESUMABLE_CHANGES and current[k] != v
    }
    if changed:
        listed = ", ".join(f"{k}={new!r} (saved {old!r})" for k, (new, old) in changed.items())
        raise ValueError(
            f"resume: settings differ from the saved run in {run_dir / CONFIG_FILE}: {listed}; "
            f"only {sorted(RESUMABLE_CHANGES - set(_ONE_OFF))} may change"
        )
