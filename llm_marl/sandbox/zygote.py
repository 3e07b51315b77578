"""Child side, part 1: a clean interpreter that forks one isolated process tree per program.

Run as a script by `llm_marl.sandbox.spawner` (``python -s -S -B -P zygote.py SOCK BASE_UID
[MODE]`` with an empty environment but ``PYTHONHASHSEED=0``). It imports everything the
sandbox needs once, never runs untrusted code itself, probes which isolation mode works, sends
that report, then serves spawn requests on a SOCK_SEQPACKET socket: a request carries limits and
three fds (payload read end, result write end, output write end); the reply carries the
request's ``id`` and a pidfd of the program's supervisor. Requests are answered in order, one
at a time, and may queue up: callers do not wait for each other's answers.

Per request: supervisor ``C`` (setsid; unshare namespaces) forks ``D``, the program's init
process. ``D`` sets up a private filesystem view, reads the payload and hands over to
`harness.coordinate`, which forks the program's loader and the tests' evaluators; each drops
its privileges and sets its rlimits (`_becomer`). ``C`` waits for ``D``; on SIGTERM it kills
``D``, whose exit as pid 1 makes the kernel kill every process of the namespace before ``C``
returns. ``C`` gets SIGKILL if the zygote dies, ``D`` if ``C`` dies (PR_SET_PDEATHSIG), and the
zygote kills every running ``C`` when its caller's socket closes (the caller exited or died).

As root the zygote first moves itself into a minimal read-only root (`kernel.minimal_root`), so
every program sees only the stdlib, shared libraries and its own private /tmp and /proc.

Modes (first that passes its probe): ``root`` (euid 0: pid/net/mount/ipc/uts namespaces and
setresuid to a per-slot unprivileged uid), ``userns`` (not root: the same namespaces inside a
new user namespace, then a nested user namespace to drop every capability; the program keeps
the caller's uid), ``none`` (no namespaces allowed: new session, rlimits and a temp dir only).
"""

from __future__ import annotations

import gc
import marshal
import os
import resource
import select
import signal
import socket
import sys
from typing import Any

try:
    from . import harness, kernel
except ImportError:  # run as a script (python -P): import the sibling files, then forget it
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import harness  # type: ignore[no-redef]
    import kernel  # type: ignore[no-redef]

    del sys.path[0]


def _set_limits(request: dict[str, Any]) -> None:
    """OS limits for one process (inherited by its forks)."""
    limits = {
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_AS: request["memory_bytes"],
        resource.RLIMIT_FSIZE: request["file_bytes"],
        resource.RLIMIT_NOFILE: request["open_files"],
        resource.RLIMIT_NPROC: request["processes"],
    }
    for kind, value in limits.items():
        resource.setrlimit(kind, (value, value))
    cpu = request["cpu_s"]
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # too-big writes fail with EFBIG instead


def _becomer(mode: str, request: dict[str, Any]) -> harness.Become:
    """What a child of ``D`` calls to drop to the program's or the evaluator's privileges."""

    def become(role: str) -> None:  # the rlimits are set (and inherited) in D already
        if mode == "root":
            uid = request["uid" if role == "program" else "evaluator_uid"]
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        elif mode == "userns":
            kernel.unshare(kernel.CLONE_NEWUSER)  # nested user ns: no capability over our mounts
        # no ptrace, no /proc/<pid>/mem, even for the same uid
        kernel.prctl(kernel.PR_SET_DUMPABLE, 0)
        if role == "program":  # evaluators never run program code
            kernel.no_keyrings()

    return become


def _init_process(mode: str, request: dict[str, Any], fds: list[int]) -> None:
    """``D``: isolate, then coordinate the program's loader and its tests' evaluators."""
    try:
        kernel.prctl(kernel.PR_SET_PDEATHSIG, signal.SIGKILL)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.umask(0o022)
        payload_fd, result_fd, output_fd = fds
        payload = _read_all(payload_fd)  # first: the dup2 calls below may reuse its number
        private_proc = False
        if mode != "none":
            private_proc = kernel.setup_filesystem(request["tmp_mb"])
        else:
            os.chdir(request["workdir"])
        kernel.prctl(kernel.PR_SET_NO_NEW_PRIVS, 1)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.dup2(result_fd, harness.RECORD_FD)
        os.closerange(harness.RECORD_FD + 1, 1 << 16)
        _set_limits(request)  # D's own use stays far below; its children inherit them
        become = _becomer(mode, request)
        if request.get("probe"):
            if os.fork() == 0:
                become("program")
                __import__("colorsys")  # the stdlib is still importable after the uid drop
                report = {"private_proc": private_proc, "uid": os.getuid(), "cwd": os.getcwd()}
                os.write(harness.RECORD_FD, marshal.dumps(report))
                os._exit(0)
            os.wait()
        else:
            harness.coordinate(marshal.loads(payload), become)
    except BaseException as error:
        try:
            os.write(2, f"sandbox setup failed: {error!r}\n".encode())
        except BaseException:
            pass
    finally:
        os._exit(0)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _supervisor(mode: str, request: dict[str, Any], fds: list[int], parent: int) -> None:
    """``C``: new namespaces, fork the init process, wait for it; SIGTERM kills it."""
    try:
        # the zygote died: so do we, and D with us
        kernel.prctl(kernel.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            return
        os.setpriority(os.PRIO_PROCESS, 0, BASE_NICE)  # programs: the caller's priority
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        if mode == "userns":
            uid, gid = os.getuid(), os.getgid()
            kernel.unshare(kernel.CLONE_NEWUSER | kernel.NAMESPACES)
            for name, text in (
                ("setgroups", "deny"),
                ("uid_map", f"0 {uid} 1"),
                ("gid_map", f"0 {gid} 1"),
            ):
                with open(f"/proc/self/{name}", "w") as file:
                    file.write(text)
        elif mode == "root":
            kernel.unshare(kernel.NAMESPACES)
        pid = os.fork()
        if pid == 0:
            _init_process(mode, request, fds)
        for fd in set(fds):
            os.close(fd)
        signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGKILL))
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        os.waitpid(pid, 0)
        if mode == "none":  # no pid namespace: take the process group down with us
            os.killpg(0, signal.SIGKILL)
    finally:
        os._exit(0)


BASE_NICE = os.getpriority(os.PRIO_PROCESS, 0)  # the caller's, restored in every C
PRIORITY_BOOST = 10


def _raise_priority() -> None:
    """Run the zygote `PRIORITY_BOOST` nice levels above its programs where allowed (root):
    busy programs must not starve the spawning of the next ones. With autogroup scheduling
    (each session a group: the zygote and every program have their own), the group's nice
    is what counts."""
    nice = max(-20, BASE_NICE - PRIORITY_BOOST)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
        with open("/proc/self/autogroup", "w") as group:
            group.write(str(nice))
    except OSError:
        pass


def spawn(mode: str, request: dict[str, Any], fds: list[int], sock: int) -> int:
    """Fork the supervisor of one program; returns its pid."""
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        os.close(sock)  # the program must never reach the zygote
        _supervisor(mode, request, fds, parent)
    return pid


def probe(mode: str, base_uid: int, sock: int) -> dict[str, Any]:
    """Run a no-op through ``mode``; the report says whether it works and what is active."""
    result_r, result_w = os.pipe()
    payload_r, payload_w = os.pipe()
    os.close(payload_w)
    request = {
        "probe": True,
        "uid": base_uid,
        "evaluator_uid": base_uid,
        "tmp_mb": 1,
        "memory_bytes": 1 << 30,
        "file_bytes": 1 << 20,
        "open_files": 64,
        "processes": 64,
        "cpu_s": 10,
        "workdir": "/",
    }
    output_w = os.dup(result_w)
    pid = spawn(mode, request, [payload_r, result_w, output_w], sock)
    for fd in (payload_r, result_w, output_w):
        os.close(fd)
    data = _read_all(result_r)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:  # already reaped (SIGCHLD is ignored)
        pass
    try:
        report = marshal.loads(data)
        return {"mode": mode, "ok": True, **report}
    except (EOFError, ValueError, TypeError):
        return {"mode": mode, "ok": False, "error": data.decode("utf-8", "replace")[-300:]}


def serve(sock_fd: int, base_uid: int, forced: str) -> None:
    """Probe the modes, send the report, then spawn one program per request until EOF; at
    EOF (the caller exited or died) kill every supervisor still running."""
    gc.freeze()  # forks share the imported state without the collector touching its pages
    sock = socket.socket(fileno=sock_fd)
    _raise_priority()
    # orphans (a supervisor killed early) come back here
    kernel.prctl(kernel.PR_SET_CHILD_SUBREAPER, 1)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # ... and the kernel reaps them all
    candidates = (
        [forced] if forced else [m for m in kernel.MODES if m != "root" or os.geteuid() == 0]
    )
    root_error = ""
    if "root" in candidates and os.geteuid() == 0:
        try:
            kernel.minimal_root()
        except OSError as error:
            root_error = f"minimal root: {error}"
    reports = []
    for mode in candidates:
        reports.append(probe(mode, base_uid, sock_fd))
        if reports[-1]["ok"]:
            break
    hidden = "root" in candidates and os.geteuid() == 0 and not root_error
    sock.send(marshal.dumps({"reports": reports, "minimal_root": hidden, "root_error": root_error}))
    mode = reports[-1]["mode"] if reports[-1]["ok"] else ""
    running: list[int] = []  # pidfds of live supervisors
    try:
        _serve(sock, mode, sock_fd, running)
    finally:
        for pidfd in running:
            try:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            except OSError:
                pass


def _forget_ended(running: list[int]) -> None:
    """Close the pidfds of supervisors that have exited (poll: any fd number)."""
    if not running:
        return
    poller = select.poll()
    for pidfd in running:
        poller.register(pidfd, select.POLLIN)
    for pidfd, _ in poller.poll(0):
        running.remove(pidfd)
        os.close(pidfd)


def _serve(sock: socket.socket, mode: str, sock_fd: int, running: list[int]) -> None:
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, 1 << 16, 4)
        except OSError:
            return
        if not message:
            return
        _forget_ended(running)
        tag = -1
        try:
            request = marshal.loads(message)
            tag = request["id"]
            if not mode or len(fds) != 3:
                raise OSError("no working isolation mode" if not mode else "expected 3 fds")
            pidfd = os.pidfd_open(spawn(mode, request, fds, sock_fd))
            running.append(pidfd)
            socket.send_fds(sock, [marshal.dumps((tag, "ok"))], [pidfd])
        except (OSError, ValueError, EOFError, TypeError, KeyError) as error:
            sock.send(marshal.dumps((tag, f"error {error}")))
        finally:
            for fd in fds:
                os.close(fd)


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "")
