"""Faults of the sandbox itself and of a busy caller: never blamed on the program, bounded in
time, retried once, and nothing (fds, uid slots, processes) is leaked."""

from __future__ import annotations

import collections
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from llm_marl.sandbox import run_many, run_tests
from llm_marl.sandbox.capacity import slot_pool
from llm_marl.sandbox.runner import STARTUP_S, TEST_SLACK_S
from llm_marl.sandbox.spawner import zygote

pytestmark = pytest.mark.usefixtures("clean_host")
GOOD = "def main(x):\n    return x + 1\n"
TESTS = ["assert main(1) == 2", "assert main(1) == 3"]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def many_open_files() -> Iterator[None]:
    """This process holds more than 1,024 open files (a busy caller), so every new fd is
    numbered above what ``select`` can watch."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1400:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below 1,400")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1400), hard))
    fillers = [os.open("/dev/null", os.O_RDONLY) for _ in range(1100)]
    try:
        yield
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def finished_within(call: Callable[[], Any], limit_s: float) -> tuple[Any, float]:
    """``call()``'s value and its duration; fails (leaving it running) if it takes longer."""
    box: list[Any] = []
    start = time.monotonic()
    worker = threading.Thread(target=lambda: box.append(call()), daemon=True)
    worker.start()
    worker.join(limit_s)
    assert box, f"still running after {limit_s} s"
    return box[0], time.monotonic() - start


def test_a_caller_with_more_than_1024_open_files_gets_every_verdict(many_open_files: None) -> None:
    """fd numbers above 1,024 (select's limit) in run_tests and run_many; no fd leaks."""
    run_many([(GOOD, TESTS)] * 3, max_workers=3)  # the zygote and 3 slot locks stay open
    before = open_fds()
    probe = os.open("/dev/null", os.O_RDONLY)
    os.close(probe)
    assert probe >= 1024, "the fillers do not push new fds past 1024"
    result = run_tests(GOOD, TESTS)
    results = run_many([(GOOD, TESTS)] * 6, max_workers=3)
    assert (result.status, result.per_test) == ("ok", [True, False])
    assert [(r.status, r.per_test) for r in results] == [("ok", [True, False])] * 6
    assert open_fds() == before
    assert slot_pool().in_use() == 0


def test_a_caller_out_of_fds_gets_a_sandbox_error_and_leaks_nothing() -> None:
    """No fd left for the pipes: status sandbox_error (not an OSError, not crashed), after one
    retry; afterwards the fds and the uid slot are back and the next run is judged."""
    run_tests(GOOD, TESTS)
    before = open_fds()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (before + 8, hard))
    fillers: list[int] = []
    try:
        while True:
            fillers.append(os.open("/dev/null", os.O_RDONLY))
    except OSError:
        pass
    try:
        result = run_tests(GOOD, TESTS)
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert result.status == "sandbox_error" and result.per_test == [False, False]
    assert result.error is not None and "Too many open files" in result.error
    assert open_fds() == before
    assert slot_pool().in_use() == 0
    assert run_tests(GOOD, TESTS).per_test == [True, False]


def test_programs_running_when_the_zygote_is_killed_are_rerun_not_blamed() -> None:
    """SIGKILL the zygote while 8 programs load: each run is retried on a new zygote and
    gets its real verdict (before: all 'crashed', the agents penalised)."""
    old = zygote()
    program = "import time\ntime.sleep(1.0)\n" + GOOD
    killer = threading.Timer(0.5, os.kill, (old.process.pid, signal.SIGKILL))
    killer.start()
    results = run_many([(program, TESTS)] * 8, max_workers=8)
    killer.join()
    assert [(r.status, r.per_test) for r in results] == [("ok", [True, False])] * 8
    assert zygote() is not old
    assert slot_pool().in_use() == 0


def test_a_stopped_zygote_is_replaced_within_the_documented_bound() -> None:
    """SIGSTOP the zygote: spawning gives up after a bounded wait, the zygote is replaced and
    the run retried (before: run_tests blocked until the zygote was continued)."""
    old = zygote()
    os.kill(old.process.pid, signal.SIGSTOP)
    try:
        result, elapsed = finished_within(lambda: run_tests(GOOD, TESTS, timeout_s=1), 60)
    finally:
        try:
            os.kill(old.process.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert (result.status, result.per_test) == ("ok", [True, False])
    assert elapsed < STARTUP_S + 3 * (1 + TEST_SLACK_S)
    assert zygote() is not old


def test_a_fault_that_persists_is_a_sandbox_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The zygote dies and no new one can start: sandbox_error (after the one retry), not
    an exception; once it can start again, runs are judged."""
    old = zygote()
    os.kill(old.process.pid, signal.SIGKILL)
    old.process.wait()
    monkeypatch.setattr(sys, "executable", "/bin/false")
    result = run_tests(GOOD, TESTS)
    monkeypatch.undo()
    assert result.status == "sandbox_error" and result.passed == 0, result
    assert result.error is not None and "zygote did not start" in result.error
    assert result.per_test_errors == [result.error] * 2
    assert run_tests(GOOD, TESTS).per_test == [True, False]


@pytest.mark.parametrize(
    ("program", "expected"),
    [
        (  # the child raises, the parent loads: the parent's report is the only one
            "import os\nif os.fork() == 0:\n    raise ValueError('child')\n" + GOOD,
            ("ok", (True, False)),
        ),
        (  # the parent raises, the child goes on
            "import os\nif os.fork() != 0:\n    raise ValueError('parent')\n" + GOOD,
            ("load_error", (False, False)),
        ),
        (  # each call forks; the fork returns a wrong answer, the server the right one
            "import os\ndef main(x):\n    if os.fork() == 0:\n        return -1\n"
            "    return x + 1\n",
            ("ok", (True, False)),
        ),
    ],
    ids=["child_raises", "parent_raises", "fork_in_a_call"],
)
def test_a_forking_program_gets_the_same_verdict_every_time(
    program: str, expected: tuple[str, tuple[bool, ...]]
) -> None:
    """Only the loader and the server report: a fork never races them to answer."""
    results = run_many([(program, TESTS)] * 24, max_workers=4)
    verdicts = collections.Counter((r.status, tuple(r.per_test)) for r in results)
    assert verdicts == {expected: 24}
