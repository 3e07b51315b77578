"""Sandbox soak test: many concurrent callers, mixed hostile programs, known verdicts.

Usage: ``python benchmarks/sandbox_soak.py [--programs N] [--workers W] [--timeout-s T]``
(default 256 programs, 64 threads, 2 s). Each program is one of six kinds, in turn: correct,
failing, looping (one test never returns), sleeping (the top level never returns), flooding
(megabytes of output, then correct) and memory-hungry (each call asks for 1 GiB, over the
512 MiB limit); each kind has one known verdict. Every thread calls `run_tests` directly.
Prints one JSON object on its last line: ``{"programs": ..., "wrong_verdicts": ...,
"sandbox_errors": ..., "leaked_fds": ..., "leaked_processes": ..., "p99_s": ..., ...}``.
Targets: 0 wrong verdicts, 0 leaks, p99 within ``timeout_s + 2`` s. A ``sandbox_error`` is
not a wrong verdict (the sandbox says it could not judge), but it is counted.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from llm_marl.sandbox import SandboxResult, isolation, run_tests
from llm_marl.sandbox.capacity import slot_pool
from llm_marl.sandbox.spawner import zygote

TESTS = ["assert f(1) == 2", "assert f(3) == 6"]
KINDS: dict[str, tuple[str, tuple[str, tuple[bool, ...]]]] = {
    # kind: (program, (expected status, expected per_test))
    "correct": ("def f(x):\n    return x * 2\n", ("ok", (True, True))),
    "failing": ("def f(x):\n    return x\n", ("ok", (False, False))),
    "looping": (
        "def f(x):\n    while x == 1:\n        pass\n    return x * 2\n",
        ("timeout", (False, True)),
    ),
    "sleeping": ("import time\ntime.sleep(3600)\n", ("timeout", (False, False))),
    "flooding": (
        "import os\nfor _ in range(64):\n    os.write(1, b'y' * 65536)\n"
        "def f(x):\n    return x * 2\n",
        ("ok", (True, True)),
    ),
    "memory": (
        "def f(x):\n    return x * 2 if len(bytearray(1 << 30)) else 0\n",
        ("ok", (False, False)),
    ),
}


def descendants(root: int) -> set[int]:
    """Pids of every live (non-zombie) process below ``root``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, stack = set(), [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def leftovers(settle_s: float = 10.0) -> set[int]:
    """This process's sandbox processes other than the zygote, once they had time to go."""
    end = time.monotonic() + settle_s
    while True:
        left = descendants(os.getpid()) - {zygote().process.pid}
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.1)


def one(kind: str, timeout_s: float) -> tuple[str, SandboxResult, float]:
    """``kind``'s program run once: (kind, result, seconds)."""
    start = time.monotonic()
    result = run_tests(KINDS[kind][0], TESTS, timeout_s=timeout_s)
    return kind, result, time.monotonic() - start


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=256, help="programs to run in all")
    parser.add_argument("--workers", type=int, default=64, help="concurrent callers (threads)")
    parser.add_argument("--timeout-s", type=float, default=2.0, help="run_tests' timeout_s")
    args = parser.parse_args()
    kinds = [list(KINDS)[i % len(KINDS)] for i in range(args.programs)]
    one("correct", args.timeout_s)  # start the zygote outside the measurement
    fds_before, slots_before = len(os.listdir("/proc/self/fd")), slot_pool().held()
    load_before = os.getloadavg()
    start = time.monotonic()
    with ThreadPoolExecutor(args.workers) as pool:
        runs = list(pool.map(lambda kind: one(kind, args.timeout_s), kinds))
    wall = time.monotonic() - start
    load_after = os.getloadavg()
    left = leftovers()
    new_slot_locks = slot_pool().held() - slots_before  # one lock fd per slot ever used
    wrong = [
        (kind, result.status, result.per_test, result.error)
        for kind, result, _ in runs
        if result.status != "sandbox_error"
        and (result.status, tuple(result.per_test)) != KINDS[kind][1]
    ]
    errors = [result.error for _, result, _ in runs if result.status == "sandbox_error"]
    latencies = [seconds for *_, seconds in runs]
    print(
        json.dumps(
            {
                "programs": args.programs,
                "workers": args.workers,
                "timeout_s": args.timeout_s,
                "wrong_verdicts": len(wrong),
                "sandbox_errors": len(errors),
                "leaked_fds": len(os.listdir("/proc/self/fd")) - fds_before - new_slot_locks,
                "leaked_processes": len(left),
                "p50_s": round(percentile(latencies, 0.5), 2),
                "p99_s": round(percentile(latencies, 0.99), 2),
                "max_s": round(max(latencies), 2),
                "p99_target_s": args.timeout_s + 2,
                "wall_s": round(wall, 1),
                "programs_per_s": round(args.programs / wall, 1),
                "load_average_before": [round(x, 1) for x in load_before],
                "load_average_after": [round(x, 1) for x in load_after],
                "cpus": os.cpu_count(),
                "isolation": isolation().mode,
                "wrong_examples": [list(map(str, w)) for w in wrong[:5]],
                "sandbox_error_examples": errors[:5],
            }
        )
    )


if __name__ == "__main__":
    main()
