"""Linux primitives of the sandbox: namespaces, mounts, prctl, seccomp, the minimal root.

Thin ctypes wrappers (each raises ``OSError`` with errno on failure), shared by the zygote and
its children; stdlib only, imported as a sibling file by the zygote script.
"""

from __future__ import annotations

import ctypes
import math
import os

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
NAMESPACES = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = 4096, 8192, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 36, 38
EXTRA_TMPFS = ("/var/tmp", "/dev/shm", "/run/lock")  # other world-writable places
MODES = ("root", "userns", "none")
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(os.uname().machine, -1)
SYSTEM_LIBS = ("/usr/lib", "/lib", "/usr/lib64", "/lib64", "/usr/lib32", "/lib32")
DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")
# seccomp: the kernel keyrings (add_key, request_key, keyctl) answer EPERM. A uid's user
# keyring outlives its processes, so it would carry data from one run of a slot to the next.
_ARCH = {"x86_64": (0xC000003E, 248), "aarch64": (0xC00000B7, 217)}.get(os.uname().machine)
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2


def keyring_filter() -> ctypes.Array | None:
    """A seccomp BPF program making the keyring syscalls fail with EPERM (None: unknown arch)."""
    if _ARCH is None:
        return None
    arch, first = _ARCH
    errno_eperm, allow = 0x00050001, 0x7FFF0000
    code = [  # (code, jt, jf, k)
        (0x20, 0, 0, 4),  # ld arch
        (0x15, 0, 6, arch),  # jeq arch ? next : allow
        (0x20, 0, 0, 0),  # ld nr
        (0x35, 3, 0, 0x40000000),  # jge x32 syscalls ? eperm
        (0x15, 2, 0, first),  # add_key
        (0x15, 1, 0, first + 1),  # request_key
        (0x15, 0, 1, first + 2),  # keyctl ? eperm : allow
        (0x06, 0, 0, errno_eperm),
        (0x06, 0, 0, allow),
    ]
    packed = b"".join(
        c.to_bytes(2, "little") + bytes([t, f]) + k.to_bytes(4, "little") for c, t, f, k in code
    )
    return ctypes.create_string_buffer(packed, len(packed))


_FILTER = keyring_filter()


def no_keyrings() -> None:
    """Install the keyring filter on this process (inherited by its forks)."""
    if _FILTER is None:
        return
    header = ctypes.create_string_buffer(16)  # struct sock_fprog { u16 len; filter *code }
    ctypes.memmove(header, (len(_FILTER) // 8).to_bytes(2, "little") + b"\0" * 6, 8)
    ctypes.memmove(ctypes.addressof(header) + 8, ctypes.addressof(_FILTER).to_bytes(8, "little"), 8)
    result = libc.prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), header, 0, 0)
    check(result, "seccomp")


def check(result: int, what: str) -> None:
    """Raise ``OSError`` with errno when a libc call returned non-zero."""
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def unshare(flags: int) -> None:
    """Move this process into new namespaces (``CLONE_NEW*`` flags)."""
    check(libc.unshare(ctypes.c_int(flags)), "unshare")


def cstr(text: str | None) -> bytes | None:
    """``text`` as a C string argument (None stays NULL)."""
    return text.encode() if text else None


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    """``mount(2)``, checked."""
    result = libc.mount(cstr(source), cstr(target), cstr(fstype), ctypes.c_ulong(flags), cstr(data))
    check(result, f"mount {target}")


def prctl(option: int, value: int) -> None:
    """``prctl(option, value)``, checked."""
    check(libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0), "prctl")


def bind(source: str, target: str, root: str) -> None:
    """Bind ``source`` read-only at ``root + target`` (a file or a directory)."""
    path = root + target
    if os.path.isdir(source):
        os.makedirs(path, mode=0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        open(path, "a").close()
    mount(source, path, None, MS_BIND | MS_REC)
    nodev = 0 if source in DEVICES else MS_NODEV
    mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | nodev)


def needed() -> tuple[list[str], list[str]]:
    """(directories, files) the programs need: the stdlib (with lib-dynload) and the shared
    libraries of the interpreter and its extension modules (their system directories)."""
    stdlib = os.path.realpath(os.path.dirname(os.__file__))
    dynload = os.path.realpath(os.path.dirname(math.__file__)) if hasattr(math, "__file__") else ""
    directories, files = {stdlib}, set()
    if dynload and not dynload.startswith(stdlib + "/"):
        directories.add(dynload)
    with open("/proc/self/maps") as maps:
        mapped = {line.split(None, 5)[-1].strip() for line in maps if "/" in line}
    for path in mapped:
        real = os.path.realpath(path)
        if ".so" not in os.path.basename(real) or not os.path.isfile(real):
            continue
        folder = os.path.dirname(real)
        if folder == stdlib or folder.startswith(stdlib + "/") or folder == dynload:
            continue
        if folder.startswith(SYSTEM_LIBS):
            directories.add(folder)
        else:
            files.add(real)
    return sorted(directories), sorted(files)


def minimal_root() -> None:
    """Move the zygote (and so every program) into a read-only tmpfs root holding only the
    stdlib (its site-packages masked), the shared libraries, a few /dev nodes and mount points;
    the host's files (the repository, site-packages, /etc, /home ...) are not there."""
    directories, files = needed()
    unshare(CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    root = "/tmp"
    mount("tmpfs", root, "tmpfs", MS_NOSUID, "size=1m,mode=755")
    for path in directories + files + [d for d in DEVICES if os.path.exists(d)]:
        bind(path, path, root)
    for directory in directories:
        for masked in ("site-packages", "dist-packages"):
            if os.path.isdir(f"{root}{directory}/{masked}"):
                mount("tmpfs", f"{root}{directory}/{masked}", "tmpfs", MS_RDONLY, "size=4k")
    for link in ("/lib", "/lib64", "/lib32", "/bin", "/sbin"):
        if os.path.islink(link) and not os.path.lexists(root + link):
            os.symlink(os.readlink(link), root + link)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0")):
        os.symlink(target, f"{root}/dev/{name}")
    for point in ("/proc", "/tmp", *EXTRA_TMPFS):
        os.makedirs(root + point, mode=0o755, exist_ok=True)
    os.chdir(root)
    check(libc.syscall(PIVOT_ROOT, b".", b"."), "pivot_root")
    check(libc.umount2(b".", 2), "umount old root")  # MNT_DETACH
    os.chdir("/")
    mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID)


def setup_filesystem(tmp_mb: int) -> bool:
    """Private /proc, tmpfs over every writable place; returns whether /proc is private."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    try:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        private_proc = True
    except OSError:
        private_proc = False
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_mb}m,mode=1777")
    for path in EXTRA_TMPFS:
        if os.path.isdir(path):
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=1777")
    os.chdir("/tmp")
    return private_proc
