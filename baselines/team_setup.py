"""Setting a run up: the team it trains (new, or reloaded from a checkpoint) and its folder."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from pettingzoo import ParallelEnv

from llm_marl.baselines.config import TrainConfig
from llm_marl.baselines.run_config import CHECKPOINTS_DIR, CONFIG_FILE
from llm_marl.baselines.run_lock import LOCK_FILE, check_unlocked
from llm_marl.baselines.run_log import METRICS_FILE, PLOT_FILE, SAMPLES_FILE
from llm_marl.baselines.storage import check_writable
from llm_marl.models import LoRASettings, Team, load_policy
from llm_marl.models.team import MANIFEST as TEAM_MANIFEST
from llm_marl.models.team import read_manifest

__all__ = [
    "RUN_ENTRIES",
    "build_team",
    "check_agents",
    "check_clearable",
    "check_run_folder",
    "clear_run_folder",
]

_OUTPUTS = (CONFIG_FILE, METRICS_FILE, SAMPLES_FILE, PLOT_FILE, CHECKPOINTS_DIR, "tensorboard")
#: What a run folder may hold (its outputs, their partly written copies, the lock);
#: ``--overwrite`` refuses to delete a folder with anything else.
RUN_ENTRIES = frozenset({*_OUTPUTS, *(f".{name}.partial" for name in _OUTPUTS), LOCK_FILE})


def build_team(config: TrainConfig, agents: Sequence[str], saved: Path | None) -> Team:
    """The team of a run: from ``config.model`` for ``agents``, or the trained one in
    ``saved`` (a checkpoint's ``team/``) when resuming."""
    _check_saved_team_model(config)
    full_with_kl = not config.lora and config.kl_beta > 0
    if saved is not None and not full_with_kl:
        return load_policy(saved, dtype=config.dtype, device=config.device)
    lora = LoRASettings(r=config.lora_r, alpha=config.lora_alpha) if config.lora else None
    team = load_policy(
        config.model,
        agents=list(agents),
        lora=lora,
        keep_reference=full_with_kl,  # the KL reference of full fine-tuning: a frozen copy
        dtype=config.dtype,
        device=config.device,
    )
    if saved is not None:  # the trained weights, the reference stays the initial model
        _copy_trainable(load_policy(saved, dtype=config.dtype, device=config.device), team)
    return team


def check_run_folder(run_dir: Path) -> None:
    """Refuse, before any model loads, a run folder that cannot be written or that a live
    trainer holds; changes nothing on disk."""
    check_writable(run_dir)
    check_unlocked(run_dir)


def check_clearable(run_dir: Path) -> None:
    """Refuse ``--overwrite`` of a folder holding anything but a run's outputs (the trainer
    asks before any model loads; :func:`clear_run_folder` asks again)."""
    if not run_dir.is_dir():
        return
    foreign = sorted(p.name for p in run_dir.iterdir() if p.name not in RUN_ENTRIES)
    if foreign:
        raise FileExistsError(
            f"--overwrite: {run_dir} holds files that are not a run's outputs ({foreign[:5]}); "
            "it was left untouched: pick another --run-name or --output-dir"
        )


def clear_run_folder(run_dir: Path) -> None:
    """Delete a previous run's outputs (``--overwrite``); refuse a folder holding other files.

    Call it holding the folder's :class:`~llm_marl.baselines.run_lock.RunLock`: the lock file
    stays, so a trainer that starts meanwhile still finds the folder taken.
    """
    if not run_dir.exists():
        return
    check_clearable(run_dir)
    for entry in run_dir.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _check_saved_team_model(config: TrainConfig) -> None:
    """A saved team as ``--model`` keeps its own adapters: refuse options it cannot honour."""
    manifest_file = Path(config.model).expanduser() / TEAM_MANIFEST
    if not manifest_file.is_file():
        return
    manifest = read_manifest(manifest_file.parent)
    lora = manifest.get("lora") or {}
    wanted = {"lora": config.lora, "lora_r": config.lora_r, "lora_alpha": config.lora_alpha}
    saved = {"lora": bool(lora), "lora_r": lora.get("r", config.lora_r)}
    saved["lora_alpha"] = lora.get("alpha", config.lora_alpha)
    clashes = [
        f"{k}={wanted[k]!r} (the team has {saved[k]!r})" for k in wanted if wanted[k] != saved[k]
    ]
    if not lora and config.kl_beta > 0:
        clashes.append("kl_beta > 0 (a saved full-weights team has no frozen reference)")
    if clashes:
        raise ValueError(
            f"--model {config.model} is a saved team, which keeps its own settings: "
            + "; ".join(clashes)
        )


def _copy_trainable(source: Team, target: Team) -> None:
    with torch.no_grad():
        for agent in target.agents:
            pairs = zip(
                target.trainable_parameters(agent), source.trainable_parameters(agent), strict=True
            )
            for mine, theirs in pairs:
                mine.copy_(theirs.to(mine.device))


def check_agents(team: Team, env: ParallelEnv[Any, Any, Any]) -> None:
    if sorted(team.agents) != sorted(env.possible_agents):
        raise ValueError(
            f"the team's agents {list(team.agents)} differ from the env's "
            f"{list(env.possible_agents)}: build the team with agents=env.possible_agents"
        )
