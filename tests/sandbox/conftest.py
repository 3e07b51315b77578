"""Host-side probes for the sandbox tests: leftover processes, canaries."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_marl.sandbox import isolation
from llm_marl.sandbox.capacity import BASE_UID, MAX_SLOTS


def processes_with(marker: str) -> list[int]:
    """Pids whose command line contains ``marker`` (psutil-free /proc scan)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(int(entry))
    return found


def processes_named(name: str) -> list[int]:
    """Pids whose process name (``/proc/<pid>/comm``) is ``name``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == name:
                    found.append(int(entry))
            except OSError:
                continue
    return found


def parents() -> dict[int, int]:
    """pid -> parent pid of every process on the host (psutil-free /proc scan)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            found[int(entry)] = int(fields[1])
    return found


def descendants(root: int) -> set[int]:
    """Pids of every live process below ``root`` (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for pid, parent in parents().items():
        children.setdefault(parent, []).append(pid)
    found, stack = set(), [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def sandbox_uid_processes(among: set[int] | None = None) -> list[int]:
    """Pids running as a sandbox slot uid (a program's or an evaluator's, root mode), on the
    whole host or only ``among`` these pids."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (among is None or int(entry) in among):
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            uid = int(
                next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1]
            )
            if BASE_UID <= uid < BASE_UID + 2 * MAX_SLOTS:
                found.append(int(entry))
    return found


def own_sandbox_processes() -> list[int]:
    """Sandbox processes of this test process (below its zygote), not of other callers."""
    return sandbox_uid_processes(descendants(os.getpid()))


def child_count() -> int:
    """Live children of this test process (the zygote included)."""
    me = str(os.getpid())
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            count += fields[1] == me and fields[0] != "Z"
    return count


@pytest.fixture
def marker() -> str:
    """A unique word a hostile program puts in the command line of what it spawns."""
    return f"llmmarlmarker{uuid.uuid4().hex}"


@pytest.fixture
def clean_host() -> Iterator[None]:
    """Asserts after the test that no program process of this test process survived and no
    child leaked; programs of other callers on the host (another suite) do not count."""
    isolation()
    before, strays = child_count(), set(own_sandbox_processes())
    yield
    assert set(own_sandbox_processes()) <= strays
    assert child_count() == before


@pytest.fixture
def canary() -> Iterator[Path]:
    """A host file outside any temp dir, readable by everyone, that programs must not touch.

    It lives beside the tests unless the checkout is under a folder the sandbox replaces by
    a private tmpfs (/tmp, /root: a CI clone may sit there), where programs could not see it.
    """
    home = Path(__file__).parent
    if (
        home.is_relative_to("/tmp")
        or home.is_relative_to("/root")
        or home.is_relative_to("/var/tmp")
    ):
        home = Path("/var/lib")
    directory = home / f"llm-marl-canary-{uuid.uuid4().hex[:8]}"
    directory.mkdir(mode=0o755)
    path = directory / "canary.txt"
    path.write_text("untouched")
    path.chmod(0o644)
    yield path
    assert path.read_text() == "untouched"
    assert sorted(p.name for p in directory.iterdir()) == ["canary.txt"]
    path.unlink()
    directory.rmdir()
