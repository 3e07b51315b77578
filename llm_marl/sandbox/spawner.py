"""Parent side: the zygote client (one per caller process) and the per-slot uids.

This module holds the only process-wide state of the sandbox, because what it manages is
process-wide: one zygote process (started on first use, restarted if it dies or after a
fork of the caller) and the uid slots this process holds.
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

    def acquire(self) -> int:
        """A free uid; raises RuntimeError when all `MAX_SLOTS` are taken."""
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
        raise RuntimeError(f"all {MAX_SLOTS} sandbox uid slots under {self._directory} are busy")

    def release(self, uid: int) -> None:
        with self._lock:
            self._free.append(uid)


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
        ours.settimeout(60)
        try:
            report = marshal.loads(ours.recv(1 << 16))
        except (OSError, EOFError, ValueError) as error:
            self.close()
            raise RuntimeError(f"the sandbox zygote did not start: {self.stderr()}") from error
        ours.settimeout(None)
        self.isolation = _isolation(report)
        self.slots = SlotPool(Path(tempfile.gettempdir()) / "llm-marl-sandbox-uids")
        if self.isolation.mode not in ("root", "userns"):
            warnings.warn(
                f"llm_marl.sandbox runs programs WITHOUT namespaces (mode "
                f"{self.isolation.mode!r}): {'; '.join(self.isolation.errors)}",
                RuntimeWarning,
                stacklevel=3,
            )

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()[-2000:].decode("utf-8", "replace")

    def alive(self) -> bool:
        return self.process.poll() is None and self.owner_pid == os.getpid()

    def spawn(self, request: dict[str, Any], fds: list[int]) -> int:
        """Start one program; returns a pidfd of its supervisor (owned by the caller)."""
        with self._lock:
            socket.send_fds(self._socket, [marshal.dumps(request)], fds)
            message, received, _, _ = socket.recv_fds(self._socket, 4096, 1)
        if message != b"ok" or len(received) != 1:
            for fd in received:
                os.close(fd)
            raise OSError(f"the sandbox zygote refused: {message.decode('utf-8', 'replace')}")
        return received[0]

    def close(self) -> None:
        self._socket.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_state_lock = threading.Lock()
_current: list[Zygote] = []  # at most one: the zygote of this process


def zygote() -> Zygote:
    """This process's zygote, started (or restarted) on demand."""
    with _state_lock:
        if _current and not _current[0].alive():
            stale = _current.pop()
            if stale.owner_pid == os.getpid():
                stale.close()
        if not _current:
            _current.append(Zygote())
        return _current[0]


@atexit.register
def _shutdown() -> None:
    with _state_lock:
        if _current and _current[0].owner_pid == os.getpid():
            _current.pop().close()
