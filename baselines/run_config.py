"""A run's settings: ``config.yaml``, written at the start of training, read back by
``--resume``; every checkpoint's manifest keeps a copy (:func:`run_settings`), so a run whose
``config.yaml`` is gone still resumes with, and only with, its own settings.

They hold the algorithm and every setting except the one-off ``resume`` and ``overwrite``.
Imports no torch, so the command line can read them before any model loads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from llm_marl.baselines.config import RESUMABLE_CHANGES, TrainConfig

__all__ = [
    "CHECKPOINTS_DIR",
    "CHECKPOINT_MANIFEST",
    "CONFIG_FILE",
    "check_resumable",
    "check_resume",
    "dump_config",
    "run_settings",
    "saved_settings",
]

CONFIG_FILE = "config.yaml"
#: A run's checkpoint folder, and each checkpoint's manifest (:mod:`.checkpoint`).
CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_MANIFEST = "checkpoint.json"
_ONE_OFF = ("resume", "overwrite")
_STEP = re.compile(r"step-(\d+)")


def dump_config(config: TrainConfig) -> str:
    """The text of ``config.yaml`` for ``config``."""
    values = {k: v for k, v in asdict(config).items() if k not in _ONE_OFF}
    return yaml.safe_dump({"algo": config.algo, **values}, sort_keys=False)


def run_settings(config: TrainConfig) -> dict[str, Any]:
    """The settings of ``config.yaml`` as plain values (what a checkpoint's manifest keeps)."""
    values: dict[str, Any] = yaml.safe_load(dump_config(config))
    return values


def saved_settings(run_dir: Path, algo: str) -> dict[str, Any]:
    """The settings a run saved in its ``config.yaml``, or else in its newest checkpoint's
    manifest (empty when there are neither); an error when the run belongs to another
    algorithm."""
    path = run_dir / CONFIG_FILE
    saved = (
        (yaml.safe_load(path.read_text()) or {}) if path.is_file() else _newest_settings(run_dir)
    )
    if saved.get("algo", algo) != algo:
        raise ValueError(
            f"{run_dir} is a {saved['algo']} run; resume it with --algo {saved['algo']}"
        )
    return {k: v for k, v in saved.items() if k not in ("algo", *_ONE_OFF)}


def _newest_settings(run_dir: Path) -> dict[str, Any]:
    """The settings in the manifest of ``run_dir``'s newest checkpoint that has them."""
    folder = run_dir / CHECKPOINTS_DIR
    steps = [(int(m.group(1)), p) for p in _entries(folder) if (m := _STEP.fullmatch(p.name))]
    for _, path in sorted(steps, reverse=True):
        settings = _checkpoint_settings(path)
        if settings:
            return settings
    return {}


def _checkpoint_settings(checkpoint: Path) -> dict[str, Any]:
    """The settings kept in a checkpoint's manifest (empty: a checkpoint without them)."""
    try:
        settings = json.loads((checkpoint / CHECKPOINT_MANIFEST).read_text()).get("settings")
    except (OSError, ValueError, AttributeError):
        return {}
    return dict(settings) if isinstance(settings, dict) else {}


def check_resume(
    config: TrainConfig, checkpoint: Path, saved: Mapping[str, Any] | None = None
) -> None:
    """Refuse to resume ``checkpoint`` (in ``<run>/checkpoints/``) with settings that change
    the run: those of the run's ``config.yaml`` (``saved`` when the caller read them already)
    and those kept in the checkpoint, which trained its weights (they count when
    ``config.yaml`` is gone)."""
    run_dir = checkpoint.parent.parent
    if (run_dir / CONFIG_FILE).is_file():
        if saved is None:
            saved = saved_settings(run_dir, config.algo)
        check_resumable(config, saved, run_dir / CONFIG_FILE)
    kept = _checkpoint_settings(checkpoint)
    if kept:
        check_resumable(config, kept, checkpoint / CHECKPOINT_MANIFEST)


def _entries(folder: Path) -> list[Path]:
    return list(folder.iterdir()) if folder.is_dir() else []


def check_resumable(config: TrainConfig, saved: Mapping[str, Any], source: Path) -> None:
    """Refuse to resume with settings that would change the run's meaning (``saved``: the
    settings kept in ``source``, a ``config.yaml`` or a checkpoint's manifest)."""
    if saved.get("algo", config.algo) != config.algo:
        raise ValueError(
            f"{source} is of a {saved['algo']} run; resume it with --algo {saved['algo']}"
        )
    current = run_settings(config)
    changed = {
        k: (current[k], v)
        for k, v in saved.items()
        if k in current and k not in RESUMABLE_CHANGES and current[k] != v
    }
    if changed:
        listed = ", ".join(f"{k}={new!r} (saved {old!r})" for k, (new, old) in changed.items())
        raise ValueError(
            f"resume: settings differ from the saved run in {source}: {listed}; "
            f"only {sorted(RESUMABLE_CHANGES - set(_ONE_OFF))} may change"
        )
