"""Checkpoints: the team, every optimiser, the RNG states, the run position, and extras.

A checkpoint is a folder ``checkpoints/step-000010/`` holding ``team/`` (the team's
``save_pretrained``, loadable with ``load_policy``), ``trainer_state.pt`` (step, data position,
optimiser and RNG states), one ``extras/<name>.pt`` per extra part an algorithm declares (a
critic, say) and ``checkpoint.json``, the manifest: the parts, the run's settings, and the size
and SHA-256 of every file. It is written under a temporary name, fsynced (files and folders)
and renamed when complete, so a run killed while saving never leaves a half-written checkpoint
that ``--resume`` would pick. A checkpoint counts as complete only when every part a trainer
needs is listed and every listed file is there with its size; ``--resume`` also checks the
hashes and falls back to the previous intact checkpoint, with a warning naming the bad file.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from llm_marl.baselines.run_config import CHECKPOINT_MANIFEST
from llm_marl.baselines.run_watch import RunWarning
from llm_marl.baselines.storage import fsync_folder, storage_error
from llm_marl.models import Team
from llm_marl.models.team import MANIFEST as TEAM_MANIFEST

__all__ = [
    "EXTRAS_DIR",
    "MANIFEST",
    "TEAM_DIR",
    "DamagedCheckpoint",
    "checkpoint_folders",
    "checkpoint_name",
    "checkpoint_problem",
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
MANIFEST = CHECKPOINT_MANIFEST
FORMAT = "llm-marl-checkpoint"
VERSION = 2
_NAME = re.compile(r"step-(\d+)")
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


class DamagedCheckpoint(ValueError):
    """A checkpoint whose files do not match its manifest."""


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
    settings: Mapping[str, Any] | None = None,
) -> Path:
    """Write the checkpoint of ``step`` into ``folder`` atomically and durably; its final path.

    ``extras`` maps part names to objects ``torch.save`` can write (state dicts); ``settings``
    (JSON values: the run's settings) go into the manifest; ``keep > 0`` then deletes all but
    the newest ``keep`` checkpoints. A full disk or a read-only folder raises an ``OSError``
    that says so (``errno.ENOSPC`` / ``errno.EACCES``), leaving no partial folder behind.
    """
    extras = dict(extras or {})
    for name in extras:
        if not _PART.fullmatch(name):
            raise ValueError(f"extra part name {name!r} names a file: use letters, digits, _, -")
    final = folder / checkpoint_name(step)
    partial = folder / f".partial-{final.name}"
    try:
        for leftover in folder.glob(".partial-*"):  # from saves that were killed
            shutil.rmtree(leftover, ignore_errors=True)
        partial.mkdir(parents=True)
        states = {name: opt.state_dict() for name, opt in optimizers.items()}
        state = {"step": step, "position": position, "optimizers": states, "rng": rng_state()}
        _write_parts(partial, team, state, extras)
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "step": step,
            "extras": sorted(extras),
            "optimizer_states": {k: len(v["state"]) for k, v in states.items()},
            "settings": dict(settings or {}),
            "files": _file_table(partial),  # fsyncs every file it hashes
        }
        _write_durably(partial / MANIFEST, json.dumps(manifest, indent=1) + "\n")  # marks it done
        for sub in sorted((p for p in partial.rglob("*") if p.is_dir()), reverse=True):
            fsync_folder(sub)
        fsync_folder(partial)
        if final.exists():
            shutil.rmtree(final)
        partial.rename(final)
        fsync_folder(folder)
    except Exception as error:
        storage = storage_error(error, partial)  # before the clean-up frees the space
        shutil.rmtree(partial, ignore_errors=True)
        if storage is not None:
            raise storage from error
        raise
    if keep > 0:
        for old in _complete(folder, sorted(extras))[:-keep]:
            shutil.rmtree(old)
    return final


def _write_parts(
    partial: Path, team: Team, state: Mapping[str, Any], extras: Mapping[str, Any]
) -> None:
    team.save_pretrained(partial / TEAM_DIR)
    torch.save(dict(state), partial / STATE_FILE)
    if extras:
        (partial / EXTRAS_DIR).mkdir()
        for name, value in extras.items():
            torch.save(value, partial / EXTRAS_DIR / f"{name}.pt")


def _write_durably(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _file_table(root: Path) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of every file under ``root`` (paths relative, with ``/``); each file
    is fsynced on the way."""
    table = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        table[path.relative_to(root).as_posix()] = {
            "size": path.stat().st_size,
            "sha256": _sha256(path, sync=True),
        }
    return table


def _sha256(path: Path, *, sync: bool = False) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
        if sync:
            os.fsync(f.fileno())
    return digest.hexdigest()


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def checkpoint_problem(
    path: Path, extras: Sequence[str] = (), *, hashes: bool = True
) -> str | None:
    """What is wrong with the checkpoint folder ``path`` (naming the bad file), or None when
    it holds every part (each of ``extras`` too) and every file matches the manifest.

    ``hashes=False`` checks presence and sizes only (cheap). A manifest of the first format
    (no file table) is checked for the presence of its parts only.
    """
    manifest = _read_manifest(path)
    if manifest is None:
        return f"{path / MANIFEST} is missing or not JSON"
    absent = sorted(set(extras) - set(manifest.get("extras", [])))
    if absent:
        return f"{path / MANIFEST} lists no extra part {absent}"
    required = [
        STATE_FILE,
        f"{TEAM_DIR}/{TEAM_MANIFEST}",
        *(f"{EXTRAS_DIR}/{n}.pt" for n in extras),
    ]
    files = manifest.get("files")
    if not isinstance(files, dict):  # the first format: no sizes or hashes to check
        gone = [name for name in required if not (path / name).is_file()]
        return f"{path / gone[0]} is missing" if gone else None
    for name in required:
        if name not in files:
            return f"{path / MANIFEST} does not list {name}"
    for name, entry in files.items():
        file = path / name
        if not file.is_file():
            return f"{file} is missing"
        size = file.stat().st_size
        if size != entry.get("size"):
            return f"{file} has {size} bytes, its manifest says {entry.get('size')}"
        if hashes and _sha256(file) != entry.get("sha256"):
            return f"{file} does not match the SHA-256 in its manifest (changed or corrupted)"
    return None


def checkpoint_folders(folder: Path) -> list[Path]:
    """The folders in ``folder`` named like checkpoints (intact or not), oldest first."""
    return _candidates(folder)


def _candidates(folder: Path) -> list[Path]:
    """The folders in ``folder`` named like checkpoints, oldest first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.fullmatch(p.name))]
    return [path for _, path in sorted(found)]


def _complete(folder: Path, extras: Sequence[str] = ()) -> list[Path]:
    """The complete checkpoints in ``folder`` (sizes checked, not hashes), oldest first."""
    return [p for p in _candidates(folder) if checkpoint_problem(p, extras, hashes=False) is None]


def latest_checkpoint(folder: Path, extras: Sequence[str] = ()) -> Path | None:
    """The newest intact checkpoint holding every part in ``extras`` (hashes checked).

    Each newer checkpoint passed over gives a :class:`RunWarning` that names its bad file
    (the command line prints it as one ``llm-marl train: warning:`` line).
    """
    for path in reversed(_candidates(folder)):
        problem = checkpoint_problem(path, extras)
        if problem is None:
            return path
        warnings.warn(
            f"checkpoint {path.name} is not usable: {problem}; trying the previous one",
            RunWarning,
            stacklevel=2,
        )
    return None


def load_trainer_state(checkpoint: Path) -> dict[str, Any]:
    """The contents of ``trainer_state.pt``: step, position, optimisers and ``rng`` (the RNG
    states, for :func:`restore_rng`; nothing is restored here). Optimiser states that hold
    fewer entries than the manifest recorded raise :class:`DamagedCheckpoint`."""
    # Our own file; it holds Python and NumPy RNG states, which need full unpickling.
    state: dict[str, Any] = torch.load(checkpoint / STATE_FILE, weights_only=False)
    recorded = (_read_manifest(checkpoint) or {}).get("optimizer_states", {})
    for name, count in recorded.items():
        held = len(state.get("optimizers", {}).get(name, {}).get("state", {}))
        if held != count:
            raise DamagedCheckpoint(
                f"{checkpoint / STATE_FILE}: optimiser {name!r} holds {held} parameter states, "
                f"the manifest recorded {count}; resume from an earlier checkpoint"
            )
    return state


def load_extras(checkpoint: Path, names: Sequence[str]) -> dict[str, Any]:
    """The extra parts ``names`` of ``checkpoint``."""
    return {
        name: torch.load(checkpoint / EXTRAS_DIR / f"{name}.pt", weights_only=False)
        for name in names
    }
