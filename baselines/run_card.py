"""The run card of a results folder: what produced it, so that it can be produced again.

``run_card.json`` (and its readable twin ``run_card.md``) holds the config, the SHA-256 of
every data file and of the model folder's files, the versions of the packages that matter, the
project's git commit, and the machine. Built without importing torch: the torch threads and GPU
are read from torch only when the caller's process has already imported it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "PACKAGES",
    "file_sha256",
    "folder_sha256",
    "git_commit",
    "machine_info",
    "machine_summary",
    "package_versions",
    "run_card",
    "run_card_markdown",
    "shown_path",
]

#: The distributions whose versions the card records.
PACKAGES = ("llm-marl", "torch", "transformers", "peft", "pettingzoo", "gymnasium", "numpy")
_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """The SHA-256 hex digest of the file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def folder_sha256(folder: Path) -> dict[str, Any]:
    """``{"sha256": ..., "files": {relative path: sha256}}`` of every file under ``folder``.

    The folder's digest hashes the sorted "path digest" lines, so it depends on the names and
    contents only (not on timestamps or the order the file system lists them).
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(
            f"model folder {root} does not exist; pass the folder the model "
            "was loaded from, or None"
        )
    files = {
        path.relative_to(root).as_posix(): file_sha256(path)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
    lines = "".join(f"{name} {digest}\n" for name, digest in sorted(files.items()))
    return {"sha256": hashlib.sha256(lines.encode()).hexdigest(), "files": files}


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """The installed version of each distribution (None when it is not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def shown_path(path: Path | str) -> str:
    """``path`` as a card shows it: relative to this project's checkout (or the working
    folder) when inside it, ``~/...`` under the home folder, else absolute. A card written in
    one clone then reads the same in another."""
    resolved = Path(path).resolve()
    project = Path(__file__).resolve().parents[1]
    for root in (project, Path.cwd().resolve()):
        if resolved.is_relative_to(root):
            return resolved.relative_to(root).as_posix()
    home = Path.home().resolve()
    if resolved.is_relative_to(home):
        return "~/" + resolved.relative_to(home).as_posix()
    return str(resolved)


def git_commit(folder: Path | None = None) -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` of the git checkout holding ``folder`` (default: this
    project's source), or None outside a checkout or without git."""
    where = Path(folder) if folder is not None else Path(__file__).resolve().parent
    git = shutil.which("git")
    if git is None:
        return None

    def _git(*args: str) -> str | None:
        done = subprocess.run(
            [git, "-C", str(where), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else None

    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)  # kB -> GiB
    except OSError:
        pass
    return None


def _gpu() -> str | None:
    torch = sys.modules.get("torch")  # only when the caller already loaded it
    if torch is not None and torch.cuda.is_available():
        return str(torch.cuda.get_device_name(0))
    smi = shutil.which("nvidia-smi")
    if torch is None and smi is not None:
        done = subprocess.run(
            [smi, "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip().splitlines()[0]
    return None


def machine_info() -> dict[str, Any]:
    """Platform, Python, CPU model, cores, RAM (GiB), torch threads and GPU (None if none)."""
    torch = sys.modules.get("torch")
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": _ram_gb(),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "gpu": _gpu(),
    }


def machine_summary(machine: Mapping[str, Any]) -> str:
    """One line for the table's labels: ``"Intel Xeon ..., 2 cores, 8.0 GiB RAM, no GPU"``."""
    ram = f", {machine['ram_gb']} GiB RAM" if machine.get("ram_gb") else ""
    return f"{machine['cpu']}, {machine['cores']} cores{ram}, {machine.get('gpu') or 'no GPU'}"


def run_card(
    config: Mapping[str, Any],
    data_files: Sequence[Path],
    model_dir: Path | None,
) -> dict[str, Any]:
    """The run card: config, data and model hashes, package versions, git commit, machine."""
    return {
        "config": dict(config),
        "data": {shown_path(path): file_sha256(path) for path in sorted(map(Path, data_files))},
        "model": None
        if model_dir is None
        else {"path": shown_path(model_dir), **folder_sha256(model_dir)},
        "packages": package_versions(),
        "git": git_commit(),
        "machine": machine_info(),
    }


def run_card_markdown(card: Mapping[str, Any]) -> str:
    """The run card as Markdown: one section per part, the config as JSON."""
    git = card["git"]
    model = card["model"]
    lines = [
        "# Run card",
        "",
        "## Code",
        "",
        f"- git commit: {git['commit'] + (' (uncommitted changes)' if git['dirty'] else '')}"
        if git
        else "- git commit: none (not run from a git checkout)",
        *(f"- {name}: {version or 'not installed'}" for name, version in card["packages"].items()),
        "",
        "## Machine",
        "",
        *(f"- {key}: {value}" for key, value in card["machine"].items()),
        "",
        "## Data (SHA-256)",
        "",
        *(f"- `{path}`: `{digest}`" for path, digest in card["data"].items()),
        *(["- none given"] if not card["data"] else []),
        "",
        "## Model (SHA-256)",
        "",
        f"- `{model['path']}`: `{model['sha256']}` ({len(model['files'])} files)"
        if model
        else "- no model folder given",
        "",
        "## Config",
        "",
        "```json",
        json.dumps(card["config"], indent=2, sort_keys=True, default=str),
        "```",
    ]
    return "\n".join(lines) + "\n"
