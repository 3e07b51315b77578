"""Checkpoints: the team, every optimiser, the RNG states, the run position, and extras.

A checkpoint is a folder ``checkpoints/step-000010/`` holding ``team/`` (the team's
``save_pretrained``, loadable with ``load_policy``), ``trainer_state.pt`` (step, data position,
optimiser and RNG states), one ``extras/<name>.pt`` per extra part an algorithm declares (a
critic, say) and ``checkpoint.json``, which lists the parts. It is written under a temporary
name and renamed when complete, so a run killed while saving never leaves a half-written
checkpoint that ``--resume`` would pick; a checkpoint counts as complete only when every part a
trainer needs is there.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from llm_marl.models import Team
from llm_marl.models.team import MANIFEST as TEAM_MANIFEST

__all__ = [
    "EXTRAS_DIR",
    "TEAM_DIR",
    "checkpoint_name",
    "latest_checkpoint",
    "load_extras",
    "load_trainer_state",
    "restore_rng",
    "rng_state",
    "save_checkpoint",
]

TEAM_DIR = "team"
STATE_FILE = "trainer_state.pt"
EXTRAS_DIR = "extras"
MANIFEST = "checkpoint.json"
_NAME = re.compile(r"step-(\d+)")
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def checkpoint_name(step: int) -> str:
    """The folder name of the checkpoint of ``step``: ``step-000010``."""
    return f"step-{step:06d}"


def rng_state() -> dict[str, Any]:
    """The global RNG states of torch (CPU and CUDA), Python and NumPy."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }


def restore_rng(state: Mapping[str, Any]) -> None:
    """Put back the RNG states of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])


def save_checkpoint(
    folder: Path,
    step: int,
    team: Team,
    optimizers: Mapping[str, torch.optim.Optimizer],
    position: int,
    *,
    extras: Mapping[str, Any] | None = None,
    keep: int = 0,
) -> Path:
    """Write the checkpoint of ``step`` into ``folder`` atomically; its final path.

    ``extras`` maps part names to objects ``torch.save`` can write (state dicts); ``keep > 0``
    then deletes all but the newest ``keep`` checkpoints.
    """
    extras = dict(extras or {})
    for name in extras:
        if not _PART.fullmatch(name):
            raise ValueError(f"extra part name {name!r} names a file: use letters, digits, _, -")
    final = folder / checkpoint_name(step)
    for leftover in folder.glob(".partial-*"):  # from saves that were killed
        shutil.rmtree(leftover, ignore_errors=True)
    partial = folder / f".partial-{final.name}"
    partial.mkdir(parents=True)
    team.save_pretrained(partial / TEAM_DIR)
    state = {
        "step": step,
        "position": position,
        "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
        "rng": rng_state(),
    }
    torch.save(state, partial / STATE_FILE)
    if extras:
        (partial / EXTRAS_DIR).mkdir()
        for name, value in extras.items():
            torch.save(value, partial / EXTRAS_DIR / f"{name}.pt")
    manifest = {"step": step, "extras": sorted(extras)}
    (partial / MANIFEST).write_text(json.dumps(manifest) + "\n")  # last: marks it complete
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    if keep > 0:
        for old in _complete(folder, sorted(extras))[:-keep]:
            shutil.rmtree(old)
    return final


def _is_complete(path: Path, extras: Sequence[str]) -> bool:
    """Every part is there: the manifest, the state, a saved team and each extra."""
    try:
        listed = json.loads((path / MANIFEST).read_text()).get("extras", [])
    except (OSError, ValueError, AttributeError):
        return False
    return (
        (path / STATE_FILE).is_file()
        and (path / TEAM_DIR / TEAM_MANIFEST).is_file()
        and set(extras) <= set(listed)
        and all((path / EXTRAS_DIR / f"{name}.pt").is_file() for name in extras)
    )


def _complete(folder: Path, extras: Sequence[str] = ()) -> list[Path]:
    """The complete checkpoints in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = [
        (int(match.group(1)), path)
        for path in folder.iterdir()
        if (match := _NAME.fullmatch(path.name)) and _is_complete(path, extras)
    ]
    return [path for _, path in sorted(found)]


def latest_checkpoint(folder: Path, extras: Sequence[str] = ()) -> Path | None:
    """The complete checkpoint (holding every part in ``extras``) with the highest step."""
    done = _complete(folder, extras)
    return done[-1] if done else None


def load_trainer_state(checkpoint: Path) -> dict[str, Any]:
    """The contents of ``trainer_state.pt``: step, position, optimisers and ``rng`` (the RNG
    states, for :func:`restore_rng`; nothing is restored here)."""
    # Our own file; it holds Python and NumPy RNG states, which need full unpickling.
    state: dict[str, Any] = torch.load(checkpoint / STATE_FILE, weights_only=False)
    return state


def load_extras(checkpoint: Path, names: Sequence[str]) -> dict[str, Any]:
    """The extra parts ``names`` of ``checkpoint``."""
    return {
        name: torch.load(checkpoint / EXTRAS_DIR / f"{name}.pt", weights_only=False)
        for name in names
    }
