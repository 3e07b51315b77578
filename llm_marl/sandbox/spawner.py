"""Parent side: the zygote client (one per caller process) and the per-slot uids.

This module holds the only process-wide state of the sandbox, because what it manages is
process-wide: one zygote process (started on first use, restarted if it dies, stops answering
or after a fork of the caller) and the uid slots this process holds.

Spawning is bounded in time: a caller waits at most until its deadline for its turn on the
zygote's socket, and the zygote gets `SPAWN_REPLY_S` to answer; a zygote that does not (stopped,
stuck, gone) is killed and replaced by the next call, and the spawn fails with `SpawnError`.
"""

from __future__ import annotations

import atexit
import fcntl
import marshal
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from llm_marl.sandbox.result import Isolation

ZYGOTE_SCRIPT = Path(__file__).with_name("zygote.py")
BASE_UID = 2_100_000_000
"""Slot ``k`` runs its program as uid/gid ``BASE_UID + k`` and its evaluators as
``BASE_UID + MAX_SLOTS + k``: far above any real account or subuid range."""
MAX_SLOTS = 1024
RLIMITS = (
    "RLIMIT_AS",
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_NOFILE",
    "RLIMIT_NPROC",
    "RLIMIT_CORE",
)
ENVIRONMENT = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0"}
"""The whole environment of every program: nothing of the caller's leaks in."""
MODE_ENV = "LLM_MARL_SANDBOX_MODE"
"""Optional: force one mode (``root``, ``userns``, ``none``) instead of the strongest one."""
SPAWN_REPLY_S = 3.0
"""How long the zygote may take to answer one spawn request (a fork: milliseconds) before it
is taken for stopped or stuck, killed and replaced."""
ZYGOTE_START_S = 60.0  # a fresh interpreter, the imports and the isolation probes


class SpawnError(RuntimeError):
    """The sandbox could not start a program (a fault of the sandbox, never of the program)."""


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
        """A free uid; raises `SpawnError` when all `MAX_SLOTS` are taken."""
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
        raise SpawnError(f"all {MAX_SLOTS} sandbox uid slots under {self._directory} are busy")

    def release(self, uid: int) -> None:
        """Make ``uid`` (no process of it is left) available to this process's next run."""
        with self._lock:
            self._free.append(uid)

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


def _isolation(report: dict[str, Any]) -> Isolation:
    reports = report["reports"]
    chosen = reports[-1] if reports and reports[-1]["ok"] else None
    mode = chosen["mode"] if chosen else "broken"
    spaces = mode in ("root", "userns")
    return Isolation(
        mode=mode,
        user_namespace=mode == "userns",
        pid_namespace=spaces,
        net_namespace=spaces,
        mount_namespace=spaces,
        ipc_uts_namespaces=spaces,
        private_proc=bool(chosen and chosen.get("private_proc")),
        separate_uid=mode == "root",
        no_new_privs=chosen is not None,
        rlimits=RLIMITS if chosen else (),
        fresh_interpreter="fork of a clean zygote (python -s -S -B -P, empty environment, "
        "PYTHONHASHSEED=0) that never runs untrusted code; one server fork per test",
        verdicts="in a trusted evaluator per test that never runs program code and only "
        "receives plain data from the program"
        + (" (its own uid)" if mode == "root" else " (same uid, not dumpable)"),
        host_filesystem=(
            "hidden: minimal read-only root (stdlib, shared libraries, /dev nodes)"
            if mode == "root" and report.get("minimal_root")
            else "visible where permissions allow (read-only for a separate uid)"
        ),
        errors=tuple(f"{r['mode']}: {r['error']}" for r in reports if not r["ok"])
        + ((report["root_error"],) if report.get("root_error") else ()),
    )


class Zygote:
    """A running zygote process and the socket that asks it to spawn programs."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._stderr = tempfile.TemporaryFile()
        command = [
            sys.executable,
            "-s",
            "-S",
            "-B",
            "-P",
            str(ZYGOTE_SCRIPT),
            str(theirs.fileno()),
            str(BASE_UID),
            os.environ.get(MODE_ENV, ""),
        ]
        self.process = subprocess.Popen(
            command,
            pass_fds=[theirs.fileno()],
            env=ENVIRONMENT,
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            start_new_session=True,
        )
        theirs.close()
        self._socket = ours
        self._lock = threading.Lock()
        self.owner_pid = os.getpid()
        self.broken = False
        """Set when the zygote failed to answer: it is killed and never used again."""
        ours.settimeout(ZYGOTE_START_S)
        try:
            report = marshal.loads(ours.recv(1 << 16))
        except (OSError, EOFError, ValueError) as error:
            self.broken = True
            why = self.stderr() or f"exit status {self.process.poll()}"
            self.close()
            raise SpawnError(f"the sandbox zygote did not start: {why}") from error
        self.isolation = _isolation(report)
        if self.isolation.mode not in ("root", "userns"):
            warnings.warn(
                f"llm_marl.sandbox runs programs WITHOUT namespaces (mode "
                f"{self.isolation.mode!r}): {'; '.join(self.isolation.errors)}",
                RuntimeWarning,
                stacklevel=3,
            )

    @property
    def slots(self) -> SlotPool:
        """This process's uid slots (they outlive a zygote that is replaced)."""
        return slot_pool()

    def stderr(self) -> str:
        """The last 2,000 bytes the zygote wrote to its stderr."""
        self._stderr.seek(0)
        return self._stderr.read()[-2000:].decode("utf-8", "replace")

    def alive(self) -> bool:
        """Whether this zygote can serve this process (running, answering, not inherited)."""
        return not self.broken and self.process.poll() is None and self.owner_pid == os.getpid()

    def spawn(self, request: dict[str, Any], fds: list[int], deadline: float) -> int:
        """Start one program; returns a pidfd of its supervisor (owned by the caller).

        Waits for the socket until ``deadline`` (``time.monotonic()``), then gives the zygote
        `SPAWN_REPLY_S` to answer. Raises `SpawnError`: refused, too busy, or the zygote is
        gone or does not answer (then it is killed, and `zygote` starts a new one).
        """
        if not self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise SpawnError("the sandbox is too busy: no turn to spawn before the deadline")
        try:
            if not self.alive():
                raise SpawnError("the sandbox zygote is gone")
            try:
                self._socket.settimeout(SPAWN_REPLY_S)
                socket.send_fds(self._socket, [marshal.dumps(request)], fds)
                message, received, _, _ = socket.recv_fds(self._socket, 4096, 1)
            except OSError as error:  # timeout included: the next answer would be out of step
                self.kill()
                what = "did not answer in time" if isinstance(error, TimeoutError) else "is gone"
                raise SpawnError(f"the sandbox zygote {what} ({error!r})") from None
            if not message:
                self.kill()
                raise SpawnError("the sandbox zygote closed its socket")
        finally:
            self._lock.release()
        if message != b"ok" or len(received) != 1:
            for fd in received:
                os.close(fd)
            raise SpawnError(f"the sandbox zygote refused: {message.decode('utf-8', 'replace')}")
        return received[0]

    def kill(self) -> None:
        """Mark broken and SIGKILL the zygote (its supervisors, and so programs, die with it)."""
        self.broken = True
        if self.owner_pid == os.getpid() and self.process.poll() is None:
            self.process.kill()

    def close(self) -> None:
        """Close the socket (the zygote then kills its supervisors) and wait for its exit."""
        self._socket.close()
        if self.owner_pid != os.getpid():
            return
        try:
            self.process.wait(timeout=0 if self.broken else 5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stderr.close()


_state_lock = threading.Lock()
_current: list[Zygote] = []  # at most one: the zygote of this process
_pools: list[SlotPool] = []  # at most one: the uid slots of this process


def slot_pool() -> SlotPool:
    """This process's uid slots (a forked child gets a pool of its own)."""
    with _state_lock:
        if _pools and _pools[0].owner_pid != os.getpid():
            _pools.pop().forget()
        if not _pools:
            _pools.append(SlotPool(Path(tempfile.gettempdir()) / "llm-marl-sandbox-uids"))
        return _pools[0]


def zygote() -> Zygote:
    """This process's zygote, started (or restarted) on demand; raises `SpawnError` if a new
    one does not start."""
    with _state_lock:
        if _current and not _current[0].alive():
            _current.pop().close()
        if not _current:
            _current.append(Zygote())
        return _current[0]


@atexit.register
def _shutdown() -> None:
    with _state_lock:
        if _current and _current[0].owner_pid == os.getpid():
            _current.pop().close()
