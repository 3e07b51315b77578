"""Load task records (plain dicts) from the bundled samples, a local file or folder, or a hub id.

The bundled samples are small sets the project wrote itself, stored as JSONL in the schema of
the real data set they stand in for, so one record parser serves both. They load with the
standard library alone; local files and hub ids go through HuggingFace ``datasets``
(``pip install 'llm-marl[data]'``).
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["BUNDLED", "LOCAL_FORMATS", "bundled_path", "load_records", "read_jsonl"]

#: The ``data`` value that selects the bundled sample of a task.
BUNDLED = "bundled"

#: File suffixes read from local paths, and the ``datasets`` builder for each.
LOCAL_FORMATS: dict[str, str] = {
    ".jsonl": "json",
    ".json": "json",
    ".parquet": "parquet",
    ".csv": "csv",
}


def bundled_path(task: str, split: str) -> Path:
    """Path of the bundled sample ``samples/<task>/<split>.jsonl`` inside the package."""
    path = Path(str(resources.files("llm_marl.data") / "samples" / task / f"{split}.jsonl"))
    if not path.is_file():
        available = sorted(p.stem for p in path.parent.glob("*.jsonl"))
        raise ValueError(
            f"the bundled {task!r} sample has no split {split!r}; available splits: {available}"
        )
    return path


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a JSON-lines file (UTF-8, one object per line, blank lines skipped)."""
    records = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{line_no}: not valid JSON ({err.msg})") from err
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{line_no}: expected a JSON object, got {record!r:.60}")
            records.append(record)
    return records


def load_records(
    source: str | os.PathLike[str] | None,
    *,
    split: str,
    bundled: str,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Records of one split from ``source``.

    ``source`` is ``None`` or ``"bundled"`` (the bundled sample named ``bundled``), a local file
    (used as the requested split; ``.jsonl``, ``.json``, ``.parquet`` or ``.csv``), a local folder
    holding ``<split>.<suffix>``, or a hub data-set id such as ``"trl-lib/tldr"`` (honours
    ``HF_HUB_OFFLINE`` and the local ``datasets`` cache). ``limit`` keeps the first records.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of records or None, got {limit}")
    if source is None or source == BUNDLED:
        records = read_jsonl(bundled_path(bundled, split))[:limit]
    elif Path(source).exists():
        records = _load_local(Path(source), split, limit)
    elif _looks_like_path(str(source)):
        raise FileNotFoundError(f"no such file or folder: {str(source)!r}")
    else:
        records = _load_hub(str(source), split, limit)
    if not records:
        raise ValueError(f"no records in split {split!r} of {source!r}")
    return records


def _looks_like_path(source: str) -> bool:
    """True for strings meant as a path, so a mistyped path is not sent to the hub as an id."""
    return (
        source.startswith((".", "/", "~"))
        or source.count("/") > 1
        or Path(source).suffix.lower() in LOCAL_FORMATS
    )


def _local_file(path: Path, split: str) -> Path:
    if path.is_file():
        return path
    candidates = [path / f"{split}{suffix}" for suffix in LOCAL_FORMATS]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    found = sorted(p.name for p in path.iterdir())
    raise ValueError(
        f"folder {str(path)!r} has no file for split {split!r}: expected one of "
        f"{[c.name for c in candidates]}, found {found}"
    )


def _first_rows(split: str, limit: int | None) -> str:
    """A ``datasets`` split expression that reads only the first ``limit`` rows."""
    return split if limit is None else f"{split}[:{limit}]"


def _load_local(path: Path, split: str, limit: int | None) -> list[dict[str, Any]]:
    file = _local_file(path, split)
    builder = LOCAL_FORMATS.get(file.suffix.lower())
    if builder is None:
        raise ValueError(
            f"cannot read {str(file)!r}: unknown suffix {file.suffix!r}; "
            f"use one of {sorted(LOCAL_FORMATS)}"
        )
    datasets = _import_datasets(f"local file {str(file)!r}")
    table = datasets.load_dataset(builder, data_files=str(file), split=_first_rows("train", limit))
    return list(table.to_list())


def _load_hub(dataset_id: str, split: str, limit: int | None) -> list[dict[str, Any]]:
    datasets = _import_datasets(f"hub data set {dataset_id!r}")
    try:
        table = datasets.load_dataset(dataset_id, split=_first_rows(split, limit))
    except Exception as err:
        raise RuntimeError(
            f"could not load split {split!r} of the hub data set {dataset_id!r} ({err}). "
            "Without network access, pass a local path (file or folder), or data='bundled'."
        ) from err
    return list(table.to_list())


def _import_datasets(what: str) -> Any:
    try:
        import datasets
    except ImportError as err:
        raise ImportError(
            f"loading the {what} needs HuggingFace datasets: pip install 'llm-marl[data]'"
        ) from err
    return datasets
