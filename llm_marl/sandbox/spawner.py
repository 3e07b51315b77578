"""Parent side: the zygote client (one per caller process) and the per-slot uids.

This module holds the zygote, process-wide state because what it manages is process-wide: one
zygote process (started on first use, restarted if it dies, stops answering or after a fork
of the caller). The uid slots and running turns are in `capacity`.

Spawning is pipelined and bounded in time: callers queue their requests on the zygote's
socket without waiting for each other, and one reader thread hands each answer to its caller
(by request id). A caller gives up at its deadline (the zygote is busy: its request is
abandoned and the program, if spawned later, killed at once); a zygote that answers nothing for
`SPAWN_REPLY_S` while requests wait (stopped, stuck) or is gone is killed and replaced by the
next call. Either way the spawn fails with `SpawnError`.
"""

from __future__ import annotations

import atexit
import itertools
import marshal
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_marl.sandbox.capacity import BASE_UID, SlotPool, slot_pool
from llm_marl.sandbox.result import Isolation

ZYGOTE_SCRIPT = Path(__file__).with_name("zygote.py")
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
"""How long the zygote may go without answering any request while some wait (each answer is a
fork: milliseconds) before it is taken for stopped or stuck, killed and replaced."""
ZYGOTE_START_S = 60.0  # a fresh interpreter, the imports and the isolation probes


class SpawnError(RuntimeError):
    """The sandbox could not start a program (a fault of the sandbox, never of the program)."""


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


@dataclass
class _Pending:
    """One spawn request waiting for the zygote's answer."""

    answered: threading.Event = field(default_factory=threading.Event)
    message: str = ""
    pidfd: int = -1


class Zygote:
    """A running zygote process, the socket that asks it to spawn programs, and the thread that
    reads its answers."""

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
        self._lock = threading.Lock()  # guards _pending, _ids, _answered_at
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count()
        self._answered_at = time.monotonic()
        self.owner_pid = os.getpid()
        self.broken = False
        """Set when the zygote failed or went away: it is killed and never used again."""
        ours.settimeout(ZYGOTE_START_S)
        try:
            report = marshal.loads(ours.recv(1 << 16))
        except (OSError, EOFError, ValueError) as error:
            self.broken = True
            why = self.stderr() or f"exit status {self.process.poll()}"
            self.close()
            raise SpawnError(f"the sandbox zygote did not start: {why}") from error
        ours.settimeout(None)
        self.isolation = _isolation(report)
        threading.Thread(target=self._read_answers, name="sandbox-zygote", daemon=True).start()
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

        Waits for the answer until ``deadline`` (``time.monotonic()``). Raises `SpawnError`:
        refused, too busy, or the zygote is gone or answers nothing for `SPAWN_REPLY_S` (then
        it is killed, and `zygote` starts a new one).
        """
        pending = _Pending()
        with self._lock:
            if not self.alive():
                raise SpawnError("the sandbox zygote is gone")
            tag = next(self._ids)
            if not self._pending:
                self._answered_at = time.monotonic()  # the silence starts with the first wait
            self._pending[tag] = pending
        try:
            self._send(marshal.dumps({**request, "id": tag}), fds, deadline)
        except SpawnError:
            self._abandon(tag)
            raise
        while not pending.answered.wait(max(0.0, min(0.2, deadline - time.monotonic()))):
            self._check_answering()
            if time.monotonic() >= deadline and self._abandon(tag):
                raise SpawnError("the sandbox is too busy: not spawned before the deadline")
        if pending.pidfd < 0:
            raise SpawnError(f"the sandbox zygote {pending.message}")
        return pending.pidfd

    def _send(self, message: bytes, fds: list[int], deadline: float) -> None:
        """Queue one request; the socket holds only a few, so wait for room until
        ``deadline`` (poll: the socket is writable once the zygote took one)."""
        poller = select.poll()
        poller.register(self._socket.fileno(), select.POLLOUT)
        while True:
            try:
                socket.send_fds(self._socket, [message], fds, socket.MSG_DONTWAIT)
                return
            except BlockingIOError:
                pass
            except OSError as error:
                self.kill()
                raise SpawnError(f"the sandbox zygote is gone ({error})") from None
            self._check_answering()
            if time.monotonic() >= deadline:
                raise SpawnError("the sandbox is too busy: no room for the request in time")
            poller.poll(50)

    def _check_answering(self) -> None:
        """Kill the zygote and raise `SpawnError` if it answered nothing for too long."""
        if time.monotonic() - self._answered_at > SPAWN_REPLY_S:
            self.kill()
            raise SpawnError(f"the sandbox zygote answered nothing for {SPAWN_REPLY_S:g} s")

    def _abandon(self, tag: int) -> bool:
        """Forget request ``tag`` (its program is killed if it comes); False if answered."""
        with self._lock:
            return self._pending.pop(tag, None) is not None

    def _read_answers(self) -> None:
        """The reader thread: hand each answer to its waiting caller until the socket ends."""
        try:
            while True:
                message, fds, _, _ = socket.recv_fds(self._socket, 4096, 1)
                if not message:
                    break
                with self._lock:
                    self._answered_at = time.monotonic()
                    try:
                        tag, text = marshal.loads(message)
                    except (EOFError, ValueError, TypeError):
                        tag, text = -1, "sent a malformed answer"
                    pending = self._pending.pop(tag, None)
                if pending is None or text != "ok" or len(fds) != 1:
                    _kill_all(fds)  # abandoned (its caller gave up), refused or malformed
                    if pending is not None:
                        pending.message = "refused: " + str(text)
                        pending.answered.set()
                    continue
                pending.pidfd = fds[0]
                pending.answered.set()
        except OSError:
            pass
        self.broken = True
        with self._lock:
            waiting, self._pending = list(self._pending.values()), {}
        for pending in waiting:
            pending.message = "is gone"
            pending.answered.set()

    def kill(self) -> None:
        """Mark broken and SIGKILL the zygote (its supervisors, and so programs, die with it)."""
        self.broken = True
        if self.owner_pid == os.getpid() and self.process.poll() is None:
            self.process.kill()

    def close(self) -> None:
        """End the connection (the zygote then kills its supervisors) and wait for its exit."""
        if self.owner_pid != os.getpid():  # inherited by a fork: the parent's to end
            self._socket.close()
            return
        try:
            self._socket.shutdown(socket.SHUT_RDWR)  # wakes the reader thread too
        except OSError:
            pass
        self._socket.close()
        try:
            self.process.wait(timeout=0 if self.broken else 5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stderr.close()


def _kill_all(pidfds: list[int]) -> None:
    """SIGKILL and close supervisors nobody waits for."""
    for pidfd in pidfds:
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        except OSError:
            pass
        os.close(pidfd)


_state_lock = threading.Lock()
_current: list[Zygote] = []  # at most one: the zygote of this process


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
