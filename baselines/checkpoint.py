"""Checkpoints: the team, every agent's optimiser, the RNG states and the run position.

A checkpoint is a folder ``checkpoints/step-000010/`` holding ``team/`` (the team's
``save_pretrained``, loadable with ``load_policy``) and ``trainer_state.pt``. It is written
under a temporary name and renamed when complete, so a run killed while saving never leaves a
half-written checkpoint that ``--resume`` would pick.
"""

from __future__ import annotations

import random
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from llm_marl.models import Team

__all__ = [
    "TEAM_DIR",
    "checkpoint_name",
    "latest_checkpoint",
    "load_trainer_state",
    "save_checkpoint",
]

TEAM_DIR = "team"
STATE_FILE = "trainer_state.pt"
_NAME = re.compile(r"step-(\d+)")


def checkpoint_name(step: int) -> str:
    """The folder name of the checkpoint of ``step``: ``step-000010``."""
    return f"step-{step:06d}"


def save_checkpoint(
    folder: Path,
    step: int,
    team: Team,
    optimizers: Mapping[str, torch.optim.Optimizer],
    position: int,
    *,
    keep: int = 0,
) -> Path:
    """Write the checkpoint of ``step`` into ``folder`` atomically; its final path.

    ``keep > 0`` then deletes all but the newest ``keep`` checkpoints.
    """
    final = folder / checkpoint_name(step)
    for leftover in folder.glob(".partial-*"):  # from saves that were killed
        shutil.rmtree(leftover, ignore_errors=True)
    partial = folder / f".partial-{final.name}"
    partial.mkdir(parents=True)
    team.save_pretrained(partial / TEAM_DIR)
    state = {
        "step": step,
        "position": position,
        "optimizers": {agent: opt.state_dict() for agent, opt in optimizers.items()},
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "python": random.getstate(),
            "numpy": np.random.get_state(),
        },
    }
    torch.save(state, partial / STATE_FILE)
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    if keep > 0:
        for old in _complete(folder)[:-keep]:
            shutil.rmtree(old)
    return final


def _complete(folder: Path) -> list[Path]:
    """The complete checkpoints in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = [
        (int(match.group(1)), path)
        for path in folder.iterdir()
        if (match := _NAME.fullmatch(path.name))
        and (path / STATE_FILE).is_file()
        and (path / TEAM_DIR).is_dir()
    ]
    return [path for _, path in sorted(found)]


def latest_checkpoint(folder: Path) -> Path | None:
    """The complete checkpoint with the highest step in ``folder``, if any."""
    done = _complete(folder)
    return done[-1] if done else None


def load_trainer_state(checkpoint: Path) -> dict[str, Any]:
    """Read ``trainer_state.pt`` and restore the RNG states it holds; the state."""
    # Our own file; it holds Python and NumPy RNG states, which need full unpickling.
    state: dict[str, Any] = torch.load(checkpoint / STATE_FILE, weights_only=False)
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    if rng.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    return state
