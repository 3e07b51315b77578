"""One trainer per run folder: an exclusive lock held while a run writes its folder.

The lock is ``fcntl.flock`` on ``<run>/.run.lock``, which also holds the holder's process id
for the error message. The kernel drops the lock when its process dies, however it dies, so a
lock left by a killed trainer is simply taken over; only a live holder makes a second trainer
(or an ``--overwrite`` of the same folder) refuse.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
from pathlib import Path
from types import TracebackType

__all__ = [
    "LOCK_FILE",
    "RunFolderError",
    "RunFolderInUse",
    "RunLock",
    "check_unlocked",
    "folder_state",
    "run_has_files",
]

LOCK_FILE = ".run.lock"


class RunFolderError(OSError):
    """A run folder another trainer holds or changed; the message says which and what to do."""

    def __str__(self) -> str:
        return str(self.strerror)


class RunFolderInUse(RunFolderError):
    """Another live process holds the run folder's lock."""

    def __init__(self, run_dir: Path, holder: str) -> None:
        super().__init__(
            errno.EBUSY,
            f"{run_dir} is in use by another trainer ({holder}); wait for it to end, or pick "
            "another --run-name or --output-dir",
        )
        self.run_dir = run_dir
        self.holder = holder


class RunLock:
    """The exclusive lock of one run folder (a context manager; :meth:`release` ends it)."""

    def __init__(
        self, run_dir: Path, *, unchanged_since: frozenset[tuple[str, int]] | None = None
    ) -> None:
        """Take the lock of ``run_dir`` (created if missing); :class:`RunFolderInUse` when a
        live process holds it, :class:`RunFolderError` when the folder's
        :func:`folder_state` is no longer ``unchanged_since`` (what the caller read of it)."""
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / LOCK_FILE
        self._fd: int | None = _try_lock(self.path)
        if self._fd is None:
            raise RunFolderInUse(run_dir, _holder(self.path))
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        os.fsync(self._fd)
        if unchanged_since is not None and folder_state(run_dir) != unchanged_since:
            self.release()
            raise RunFolderError(
                errno.EBUSY,
                f"{run_dir} changed after this trainer was set up (another trainer wrote to "
                "it meanwhile); start again to see its new state",
            )

    @property
    def held(self) -> bool:
        """True until :meth:`release`."""
        return self._fd is not None

    def release(self) -> None:
        """Drop the lock (the file stays: deleting it would race with a new holder)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> RunLock:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def check_unlocked(run_dir: Path) -> None:
    """Refuse early (before a model loads) when a live process holds ``run_dir``'s lock;
    changes nothing on disk."""
    path = run_dir / LOCK_FILE
    if not path.is_file():
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # unreadable: the real attempt in RunLock says what is wrong
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise RunFolderInUse(run_dir, _holder(path)) from None
    finally:
        os.close(fd)  # also drops the shared lock, if it was granted


def run_has_files(run_dir: Path) -> bool:
    """True when ``run_dir`` holds anything besides its lock file."""
    return run_dir.is_dir() and any(p.name != LOCK_FILE for p in run_dir.iterdir())


def folder_state(run_dir: Path) -> frozenset[tuple[str, int]]:
    """The names and modification times of a run folder's entries and checkpoints (not the
    lock): a trainer compares them once it holds the lock, to see whether another trainer
    wrote the folder since it read it."""
    entries = [p for p in (run_dir, run_dir / "checkpoints") if p.is_dir()]
    return frozenset(
        (str(p.relative_to(run_dir)), p.stat().st_mtime_ns)
        for folder in entries
        for p in folder.iterdir()
        if p.name != LOCK_FILE
    )


def _try_lock(path: Path, tries: int = 3) -> int | None:
    """An open descriptor holding the exclusive lock of ``path``, or None when it is held.

    A few tries, 50 ms apart: :func:`check_unlocked` of a trainer being set up holds a shared
    lock for an instant, which must not read as a trainer holding the folder.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for attempt in range(tries):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if attempt + 1 < tries:
                    time.sleep(0.05)
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return None


def _holder(path: Path) -> str:
    """What the lock file says about its holder."""
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    return text or "pid unknown"
