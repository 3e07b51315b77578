"""Parent side: the process-wide capacity of the sandbox: uid slots and running turns.

Both are process-wide because what they count is: the unprivileged uids (one per running
program, unique across every process on the host through file locks) and the programs this
process runs at once (`MAX_RUNNING`, served first come, first served). A forked child gets
its own of each.
"""

from __future__ import annotations

import collections
import fcntl
import os
import tempfile
import threading
from pathlib import Path

BASE_UID = 2_100_000_000
"""Slot ``k`` runs its program as uid/gid ``BASE_UID + k`` and its evaluators as
``BASE_UID + MAX_SLOTS + k``: far above any real account or subuid range."""
MAX_SLOTS = 1024


class SlotsBusy(RuntimeError):
    """Every uid slot is taken (a fault of the sandbox's capacity, never of a program)."""


class SlotPool:
    """Unprivileged uids, one per concurrently running program, unique across processes.

    A slot is taken by flock-ing ``<dir>/<k>.lock`` (released by the kernel when this process
    exits), so concurrent callers never share a uid and RLIMIT_NPROC counts one program only.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(mode=0o700, exist_ok=True)
        self._directory = directory
        self._free: list[int] = []
        self._held: dict[int, int] = {}
        self._lock = threading.Lock()
        self.owner_pid = os.getpid()

    def acquire(self) -> int:
        """A free uid; raises `SlotsBusy` when all `MAX_SLOTS` are taken."""
        with self._lock:
            if self._free:
                return self._free.pop()
            for slot in range(MAX_SLOTS):
                if slot in self._held:
                    continue
                fd = os.open(self._directory / f"{slot}.lock", os.O_CREAT | os.O_RDWR, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                self._held[slot] = fd
                return BASE_UID + slot
        raise SlotsBusy(f"all {MAX_SLOTS} sandbox uid slots under {self._directory} are busy")

    def release(self, uid: int) -> None:
        """Make ``uid`` (no process of it is left) available to this process's next run."""
        with self._lock:
            self._free.append(uid)

    def held(self) -> int:
        """Slots this process has taken so far (each keeps one lock fd open)."""
        with self._lock:
            return len(self._held)

    def in_use(self) -> int:
        """Slots this process holds for running programs (or never reuses: a process of the
        slot's uid outlived its run)."""
        with self._lock:
            return len(self._held) - len(self._free)

    def forget(self) -> None:
        """In a forked child: close the parent's lock fds (the parent keeps its slots)."""
        with self._lock:
            for fd in self._held.values():
                os.close(fd)
            self._held.clear()
            self._free.clear()


class Turns:
    """At most ``limit`` holders at once; waiters are served first come, first served (a
    plain semaphore lets some threads wait far longer than others)."""

    def __init__(self, limit: int) -> None:
        self._limit, self._running = limit, 0
        self._queue: collections.deque[threading.Event] = collections.deque()
        self._lock = threading.Lock()

    def acquire(self, timeout: float) -> bool:
        """Take a turn, waiting at most ``timeout`` seconds; False if none came."""
        with self._lock:
            if self._running < self._limit and not self._queue:
                self._running += 1
                return True
            turn = threading.Event()
            self._queue.append(turn)
        if turn.wait(timeout):
            return True
        with self._lock:
            if turn.is_set():  # handed over just now
                return True
            self._queue.remove(turn)
            return False

    def release(self) -> None:
        """Give the turn back: to the longest waiter, if any."""
        with self._lock:
            if self._queue:
                self._queue.popleft().set()
            else:
                self._running -= 1


_state_lock = threading.Lock()
_pools: list[SlotPool] = []  # at most one: the uid slots of this process
_turns: list[tuple[int, Turns]] = []  # at most one: (owner pid, this process's turns)
MAX_RUNNING = min(MAX_SLOTS // 2, 16 * (os.cpu_count() or 1))
"""Programs one caller process runs at once; more wait their turn (`running_turn`). Their
time limits are wall-clock, so a program must get the CPU it would get on a quiet machine:
far more programs than cores would time out correct ones (wrong verdicts, not slowness)."""


def slot_pool() -> SlotPool:
    """This process's uid slots (a forked child gets a pool of its own)."""
    with _state_lock:
        if _pools and _pools[0].owner_pid != os.getpid():
            _pools.pop().forget()
        if not _pools:
            _pools.append(SlotPool(Path(tempfile.gettempdir()) / "llm-marl-sandbox-uids"))
        return _pools[0]


def running_turn() -> Turns:
    """This process's `MAX_RUNNING` program turns (a forked child gets its own)."""
    with _state_lock:
        if _turns and _turns[0][0] != os.getpid():
            _turns.pop()
        if not _turns:
            _turns.append((os.getpid(), Turns(MAX_RUNNING)))
        return _turns[0][1]
