"""Storage failures said as such: a full disk and a folder that cannot be written.

Libraries report them in their own words: torch's writer says ``unexpected pos 46528 vs
46420`` on a short write, safetensors wraps ``os error 28`` in a ``SafetensorError``.
:func:`storage_error` turns such an error into an :class:`OSError` with the right ``errno`` and
a message that says what happened and what to do; :func:`check_writable` finds a read-only
output folder before any model loads.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

__all__ = [
    "StorageError",
    "check_writable",
    "fsync_folder",
    "run_folder_error",
    "storage_error",
]

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)
# How libraries that hide the errno word these failures.
_NO_SPACE_TEXT = ("no space left on device", "disk quota exceeded", "os error 28", "unexpected pos")
_NOT_WRITABLE_TEXT = ("read-only file system", "permission denied", "os error 30", "os error 13")


class StorageError(OSError):
    """A full disk (``errno.ENOSPC``) or a folder that cannot be written (``errno.EACCES``)."""

    def __str__(self) -> str:
        return str(self.strerror)


def check_writable(run_dir: Path) -> None:
    """Refuse a run folder that cannot be written (checked in its nearest existing folder,
    with a nameless temporary file: nothing is left behind)."""
    existing = run_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise StorageError(
            errno.ENOTDIR, f"output folder is not a folder: {existing}; pick another --output-dir"
        )
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise _not_writable(existing, error.strerror or str(error)) from error


def storage_error(error: BaseException, path: Path) -> OSError | None:
    """``error`` (or an error it was raised from) as a clear full-disk or not-writable
    :class:`OSError` about ``path``; None when it is neither."""
    if isinstance(error, StorageError):
        return error
    for cause in _chain(error):
        code = getattr(cause, "errno", None) if isinstance(cause, OSError) else None
        text = str(cause).lower()
        if code in _NO_SPACE or (code is None and any(t in text for t in _NO_SPACE_TEXT)):
            return _no_space(path, str(cause))
        if code in _NOT_WRITABLE or (code is None and any(t in text for t in _NOT_WRITABLE_TEXT)):
            return _not_writable(path, str(cause))
    return None


def run_folder_error(error: BaseException, run_dir: Path) -> OSError | None:
    """What the command line reports in one line about a run's folder: another trainer on it,
    a full disk, a folder it cannot write; None for any other error (a bug: keep its trace)."""
    from llm_marl.baselines.run_lock import RunFolderError

    if isinstance(error, RunFolderError):
        return error
    return storage_error(error, run_dir)


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _no_space(path: Path, detail: str) -> OSError:
    return StorageError(
        errno.ENOSPC,
        f"no space left on device: writing {path} failed ({_free(path)} free; {detail[:120]}); "
        "free some space (--resume then goes on from the last checkpoint) or pick another "
        "--output-dir",
    )


def _not_writable(path: Path, detail: str) -> OSError:
    return StorageError(
        errno.EACCES,
        f"output folder is not writable: {path} ({detail[:120]}); pick a writable --output-dir",
    )


def _free(path: Path) -> str:
    """The free space of the file system holding ``path``, for the message."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        free = shutil.disk_usage(existing).free
    except OSError:
        return "unknown space"
    return f"{free / 2**20:.1f} MiB"


def fsync_folder(folder: Path) -> None:
    """Make a folder's entries (a rename, a new file) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
