"""Host-side probes for the sandbox tests: leftover processes, canaries."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_marl.sandbox import isolation
from llm_marl.sandbox.spawner import BASE_UID, MAX_SLOTS


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


def sandbox_uid_processes() -> list[int]:
    """Pids running as a sandbox slot uid (root mode): must be none between runs."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            uid = int(
                next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1]
            )
            if BASE_UID <= uid < BASE_UID + MAX_SLOTS:
                found.append(int(entry))
    return found


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
    """Asserts after the test that no program process survived and no child leaked."""
    isolation()
    before, strays = child_count(), set(sandbox_uid_processes())  # zombies of other sessions
    yield
    assert set(sandbox_uid_processes()) <= strays
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
