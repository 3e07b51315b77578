"""Many programs at once: a hostile one does not affect the others; nothing leaks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import descendants, own_sandbox_processes, sandbox_uid_processes

from llm_marl.sandbox import isolation, run_tests
from llm_marl.sandbox.capacity import SlotPool, Turns

pytestmark = pytest.mark.usefixtures("clean_host")
HOSTILE = [
    "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
    "x = []\nwhile True:\n    x.append(bytearray(1 << 20))\n",
    "import os\nwhile True:\n    os.write(1, b'y' * 65536)\n",
]


@pytest.mark.parametrize("hostile", HOSTILE, ids=["fork_bomb", "memory", "flood"])
def test_sixteen_programs_in_a_pool_with_one_hostile(hostile: str) -> None:
    """15 honest programs pass all tests while a fork bomb/memory hog/flood runs beside them."""
    honest = [
        (
            f"def main(x):\n    return x * {k}\n",
            [f"assert main(2) == {2 * k}", f"for i in range(50):\n    assert main(i) == i * {k}"],
        )
        for k in range(15)
    ]
    jobs = [
        *honest[:7],
        ("def main(x):\n    return x\n", [hostile, "assert main(1) == 1"]),
        *honest[7:],
    ]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda job: run_tests(*job, timeout_s=3), jobs))
    bad = results.pop(7)
    assert bad.per_test[0] is False
    assert [r.per_test for r in results] == [[True, True]] * 15
    assert all(r.status == "ok" for r in results)


def processes_below(pid: int) -> list[int]:
    return sandbox_uid_processes(descendants(pid))


def test_another_callers_programs_are_not_this_callers() -> None:
    """A second process running programs (another suite, a trainer) shows up on the host but
    not among this process's own sandbox processes, so ``clean_host`` ignores it."""
    script = (
        "from llm_marl.sandbox import run_tests\n"
        "run_tests('import time\\ntime.sleep(30)\\n', ['assert True'], 30)\n"
    )
    if not isolation().separate_uid:
        pytest.skip("programs are told apart by their slot uids (root mode)")
    launcher = subprocess.run(  # not a child of ours: the shell exits, it is reparented
        ["/bin/sh", "-c", f'{sys.executable} -c "$0" >/dev/null 2>&1 & echo $!', script],
        capture_output=True,
        text=True,
        check=True,
    )
    caller = int(launcher.stdout)
    try:
        end, theirs = time.monotonic() + 20, set()
        while time.monotonic() < end and not theirs:
            theirs = set(processes_below(caller))
            time.sleep(0.05)
        assert theirs, "the other caller's program never started"
        assert theirs <= set(sandbox_uid_processes()), "the host-wide scan sees them"
        assert not theirs & set(own_sandbox_processes())
    finally:
        os.kill(caller, signal.SIGKILL)


def test_uid_slots_are_never_shared_between_processes(tmp_path: Path) -> None:
    """Two processes taking slots from the same lock directory get disjoint uids."""
    script = (
        "import sys, time\nfrom pathlib import Path\n"
        "from llm_marl.sandbox.capacity import SlotPool\n"
        "pool = SlotPool(Path(sys.argv[1]))\n"
        "print(*[pool.acquire() for _ in range(8)], flush=True)\ntime.sleep(30)\n"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None
        theirs = {int(uid) for uid in other.stdout.readline().split()}
        ours = SlotPool(tmp_path)
        mine = {ours.acquire() for _ in range(8)}
    finally:
        other.kill()
        other.wait()
    assert len(theirs) == len(mine) == 8 and not theirs & mine


def test_turns_are_first_come_first_served_and_bounded() -> None:
    """At most `limit` run at once; a freed turn goes to the longest waiter; a wait that
    times out leaves the queue."""
    turns = Turns(1)
    assert turns.acquire(0)
    order: list[int] = []

    def wait(k: int) -> None:
        assert turns.acquire(10)
        order.append(k)
        time.sleep(0.01)
        turns.release()

    workers = []
    for k in range(5):
        workers.append(threading.Thread(target=wait, args=(k,)))
        workers[-1].start()
        time.sleep(0.05)  # queued in order 0..4
    assert not turns.acquire(0.05)  # still busy: this wait gives up
    turns.release()
    for worker in workers:
        worker.join()
    assert order == [0, 1, 2, 3, 4]
    assert turns.acquire(0) and not turns.acquire(0)
