"""Child side, part 1: a clean interpreter that forks one isolated process tree per program.

Run as a script by `llm_marl.sandbox.spawner` (``python -s -S -B -P zygote.py SOCK BASE_UID
[MODE]`` with an empty environment but ``PYTHONHASHSEED=0``). It imports everything the
sandbox needs once, never runs untrusted code itself, probes which isolation mode works, sends
that report, then serves spawn requests on a SOCK_SEQPACKET socket: a request carries limits and
three fds (payload read end, result write end, output write end); the reply carries a pidfd of
the program's supervisor.

Per request: supervisor ``C`` (setsid; unshare namespaces) forks ``D``, the program's init
process. ``D`` sets up a private filesystem view, drops privileges, sets rlimits, reads the
payload and hands over to `harness.run`. ``C`` waits for ``D``; on SIGTERM it kills ``D``, whose
exit as pid 1 makes the kernel kill every process of the namespace before ``C`` returns. ``D``
also gets SIGKILL if ``C`` dies (PR_SET_PDEATHSIG).

Modes (first that passes its probe): ``root`` (euid 0: pid/net/mount/ipc/uts namespaces and
setresuid to a per-slot unprivileged uid), ``userns`` (not root: the same namespaces inside a
new user namespace, then a nested user namespace to drop every capability; the program keeps
the caller's uid), ``none`` (no namespaces allowed: new session, rlimits and a temp dir only).
"""

from __future__ import annotations

import ctypes
import marshal
import os
import resource
import signal
import socket
import sys
from typing import Any

try:
    from . import harness
except ImportError:  # run as a script (python -P): import the sibling file, then forget it
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import harness  # type: ignore[no-redef]

    del sys.path[0]

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
NAMESPACES = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = 4096, 8192, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 36, 38
EXTRA_TMPFS = ("/var/tmp", "/dev/shm", "/run/lock")  # other world-writable places
MODES = ("root", "userns", "none")


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def _bytes(text: str | None) -> bytes | None:
    return text.encode() if text else None


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    result = _libc.mount(
        _bytes(source), _bytes(target), _bytes(fstype), ctypes.c_ulong(flags), _bytes(data)
    )
    _check(result, f"mount {target}")


def _prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0), "prctl")


def hidden_paths() -> list[tuple[str, list[str]]]:
    """Directories a dropped uid cannot traverse but must see inside (the stdlib's path).

    Each entry is (topmost such ancestor, paths below it to bind back read-only); the
    ancestor is replaced by an empty tmpfs, which also hides everything else in it (/root).
    """
    plan: dict[str, list[str]] = {}
    for needed in {os.path.realpath(os.path.dirname(os.__file__))}:
        parts = needed.split("/")
        for depth in range(2, len(parts) + 1):
            ancestor = "/".join(parts[:depth])
            if not os.stat(ancestor).st_mode & 0o001:
                plan.setdefault(ancestor, []).append(needed)
                break
    return sorted(plan.items())


def _setup_filesystem(hidden: list[tuple[str, list[str]]], tmp_mb: int) -> bool:
    """Private /proc, tmpfs over every world-writable place; returns whether /proc is private."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    try:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        private_proc = True
    except OSError:
        private_proc = False
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_mb}m,mode=1777")
    staged: list[tuple[str, str]] = []
    for hide, keeps in hidden:
        for keep in keeps:
            stage = f"/tmp/.keep{len(staged)}"
            os.mkdir(stage)
            _mount(keep, stage, None, MS_BIND | MS_REC)
            staged.append((stage, keep))
        _mount("tmpfs", hide, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    for stage, keep in staged:
        os.makedirs(keep, mode=0o755, exist_ok=True)
        _mount(stage, keep, None, MS_MOVE)
        _mount(None, keep, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        os.rmdir(stage)
    for hide, _ in hidden:
        _mount(None, hide, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for path in EXTRA_TMPFS:
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=1777")
    os.chdir("/tmp")
    return private_proc


def _set_limits(request: dict[str, Any]) -> None:
    """OS limits for the program's processes (inherited by every fork)."""
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


def _init_process(mode: str, hidden: list, request: dict[str, Any], fds: list[int]) -> None:
    """``D``: isolate, drop privileges, limit, then run the harness (or report a probe)."""
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.umask(0o022)
        payload_fd, result_fd, output_fd = fds
        payload = _read_all(payload_fd)  # first: the dup2 calls below may reuse its number
        private_proc = False
        if mode != "none":
            private_proc = _setup_filesystem(hidden if mode == "root" else [], request["tmp_mb"])
        else:
            os.chdir(request["workdir"])
        if mode == "root":
            uid = request["uid"]
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        elif mode == "userns":
            _unshare(CLONE_NEWUSER)  # nested user ns: no capability over our mounts
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        _set_limits(request)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.dup2(result_fd, 3)
        os.closerange(4, 1 << 16)
        if request.get("probe"):
            __import__("colorsys")  # the stdlib is still importable after the uid drop
            report = {"private_proc": private_proc, "uid": os.getuid(), "cwd": os.getcwd()}
            os.write(3, marshal.dumps(report))
        else:
            harness.run(marshal.loads(payload), 3)
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


def _supervisor(mode: str, hidden: list, request: dict[str, Any], fds: list[int]) -> None:
    """``C``: new namespaces, fork the init process, wait for it; SIGTERM kills it."""
    try:
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        if mode == "userns":
            uid, gid = os.getuid(), os.getgid()
            _unshare(CLONE_NEWUSER | NAMESPACES)
            for name, text in (
                ("setgroups", "deny"),
                ("uid_map", f"0 {uid} 1"),
                ("gid_map", f"0 {gid} 1"),
            ):
                with open(f"/proc/self/{name}", "w") as file:
                    file.write(text)
        elif mode == "root":
            _unshare(NAMESPACES)
        pid = os.fork()
        if pid == 0:
            _init_process(mode, hidden, request, fds)
        for fd in set(fds):
            os.close(fd)
        signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGKILL))
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        os.waitpid(pid, 0)
        if mode == "none":  # no pid namespace: take the process group down with us
            os.killpg(0, signal.SIGKILL)
    finally:
        os._exit(0)


def spawn(mode: str, hidden: list, request: dict[str, Any], fds: list[int], sock: int) -> int:
    """Fork the supervisor of one program; returns its pid."""
    pid = os.fork()
    if pid == 0:
        os.close(sock)  # the program must never reach the zygote
        _supervisor(mode, hidden, request, fds)
    return pid


def probe(mode: str, hidden: list, base_uid: int, sock: int) -> dict[str, Any]:
    """Run a no-op through ``mode``; the report says whether it works and what is active."""
    result_r, result_w = os.pipe()
    payload_r, payload_w = os.pipe()
    os.close(payload_w)
    request = {
        "probe": True,
        "uid": base_uid,
        "tmp_mb": 1,
        "memory_bytes": 1 << 30,
        "file_bytes": 1 << 20,
        "open_files": 64,
        "processes": 64,
        "cpu_s": 10,
        "workdir": "/",
    }
    output_w = os.dup(result_w)
    pid = spawn(mode, hidden, request, [payload_r, result_w, output_w], sock)
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
    """Probe the modes, send the report, then spawn one program per request until EOF."""
    sock = socket.socket(fileno=sock_fd)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans (a supervisor killed early) come back here
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # ... and the kernel reaps them all
    hidden = hidden_paths() if os.geteuid() == 0 else []
    candidates = [forced] if forced else [m for m in MODES if m != "root" or os.geteuid() == 0]
    reports = []
    for mode in candidates:
        reports.append(probe(mode, hidden, base_uid, sock_fd))
        if reports[-1]["ok"]:
            break
    sock.send(marshal.dumps({"reports": reports, "hidden": hidden, "euid": os.geteuid()}))
    mode = reports[-1]["mode"] if reports[-1]["ok"] else ""
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, 1 << 16, 4)
        except OSError:
            return
        if not message:
            return
        try:
            if not mode or len(fds) != 3:
                raise OSError("no working isolation mode" if not mode else "expected 3 fds")
            pidfd = os.pidfd_open(spawn(mode, hidden, marshal.loads(message), fds, sock_fd))
            socket.send_fds(sock, [b"ok"], [pidfd])
            os.close(pidfd)
        except OSError as error:
            sock.send(f"error {error}".encode())
        finally:
            for fd in fds:
                os.close(fd)


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "")
