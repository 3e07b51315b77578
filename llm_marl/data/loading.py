"""Load task records (plain dicts) from the bundled samples, a local file or folder, or a hub id.

The bundled samples are small sets the project wrote itself, stored as JSONL in the schema of
the real data set they stand in for, so one record parser serves both. They load with the
standard library alone; local files and hub ids go through HuggingFace ``datasets``
(``pip install 'llm-marl[data]'``). A local file is checked first
(:func:`~llm_marl.data.validation.check_data_file`, which lists the accepted formats), so a
malformed one raises :class:`~llm_marl.data.validation.DataFileError` naming the file and line.
"""

from __future__ import annotations

import os
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

from llm_marl.data.validation import DataFileError, check_data_file, jsonl_records

__all__ = [
    "BUNDLED",
    "LOCAL_FORMATS",
    "SingleFileSplitWarning",
    "bundled_path",
    "load_records",
    "read_jsonl",
]

#: The ``data`` value that selects the bundled sample of a task.
BUNDLED = "bundled"

#: File suffixes read from local paths, and the ``datasets`` builder for each.
LOCAL_FORMATS: dict[str, str] = {
    ".jsonl": "json",
    ".json": "json",
    ".parquet": "parquet",
    ".csv": "csv",
}


class SingleFileSplitWarning(UserWarning):
    """A single local file was used as a split other than ``"train"``.

    One file has no held-out part: an evaluation on it after training on it measures
    training data. Give a folder with ``train.<suffix>`` and ``test.<suffix>`` instead.
    """


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
    """Read a JSON-lines file (UTF-8, one object per line, blank lines skipped).

    Raises :class:`~llm_marl.data.validation.DataFileError` (a ``ValueError``) naming the file
    and line for text that is not UTF-8 and a line that is not one JSON object.
    """
    return [record for _, record in jsonl_records(path)]


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
    A leading ``~`` is expanded in local paths, and ``$VAR``/``${VAR}`` in paths given as str.

    Raises:
        DataFileError: a malformed local file (a ``ValueError`` naming the file and line, see
            :mod:`llm_marl.data.validation` for the accepted formats).
        FileNotFoundError: a path (a string starting with ``.``, ``/``, ``~`` or ``$``, or
            ending in a data suffix) that does not exist.

    Warns:
        SingleFileSplitWarning: a single local file used as a split other than ``"train"``
            (an evaluation on it may be on training data).
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of records or None, got {limit}")
    if source is None or source == BUNDLED:
        records = read_jsonl(bundled_path(bundled, split))[:limit]
    elif (path := _expanded(source)).exists():
        records = _load_local(path, split, limit)
    elif _looks_like_path(str(source)):
        expanded = f" (expanded to {str(path)!r})" if str(path) != str(source) else ""
        raise FileNotFoundError(f"no such file or folder: {str(source)!r}{expanded}")
    else:
        records = _load_hub(str(source), split, limit)
    if not records:
        raise ValueError(f"no records in split {split!r} of {source!r}")
    return records


def _expanded(source: str | os.PathLike[str]) -> Path:
    """``source`` with ``~`` expanded, and environment variables when it is a str."""
    text = os.fspath(source)
    if isinstance(source, str):
        text = os.path.expandvars(text)
    return Path(text).expanduser()


def _looks_like_path(source: str) -> bool:
    """True for strings meant as a path, so a mistyped path is not sent to the hub as an id."""
    return (
        source.startswith((".", "/", "~", "$"))
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
    if file == path and split != "train":
        _warn_single_file(file, split)
    datasets = _import_datasets(f"local file {str(file)!r}")
    check_data_file(file)
    try:
        table = datasets.load_dataset(
            builder, data_files=str(file), split=_first_rows("train", limit)
        )
    except OSError:
        raise  # the disk or the cache, not the file's content: the error names the path
    except Exception as err:  # datasets wraps the cause; StopIteration must not escape
        cause = err.__cause__ or err
        said = " ".join(str(cause).split())  # pyarrow's messages span lines
        raise DataFileError(
            file,
            f"HuggingFace datasets could not read it as {builder} ({type(cause).__name__}: "
            f"{said}); check that the file is complete and in the format of its suffix "
            "(see llm_marl.data.validation)",
        ) from err
    return list(table.to_list())


def _warn_single_file(file: Path, split: str) -> None:
    """Warn that one file used as ``split`` (not "train") may be the training data too."""
    warnings.warn(
        f"the single data file {str(file)!r} is used as split {split!r}: one file has no "
        "held-out part, so if you also train on it, evaluation would then be on training "
        f"data; to give a separate test split, pass a folder holding train{file.suffix} "
        f"and {split}{file.suffix}",
        SingleFileSplitWarning,
        stacklevel=4,  # the caller of load_records
    )


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
