"""Parent side: the checks of `run_tests`' and `run_many`'s arguments, with one error wording.

A wrong argument is the caller's bug, so it raises (``TypeError`` for a wrong type,
``ValueError`` for a wrong value) before anything runs, naming the argument and the value.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence, Set
from typing import Any

MAX_TIMEOUT_S = 86_400.0
"""Largest ``timeout_s`` (one day): the CPU limit derived from it must fit the kernel's."""
MIN_MEMORY_MB, MAX_MEMORY_MB = 64, 1 << 20  # the interpreter needs 64 MiB; 1 TiB is plenty
Job = tuple[str, Sequence[str]] | tuple[str, Sequence[str], str]


def check_program(program: Any) -> str:
    """``program`` if it is a ``str``."""
    if not isinstance(program, str):
        raise TypeError(f"program must be a str of Python code, got {type(program).__name__}")
    return program


def check_tests(tests: Any) -> list[str]:
    """``tests`` as a list: a sequence of ``str`` snippets, never one ``str``, nor an
    unordered collection (``per_test`` follows the order of ``tests``)."""
    if isinstance(tests, str | bytes):
        raise TypeError(
            f"tests must be a list of test snippets, got one {type(tests).__name__} "
            f"({tests[:60]!r}); pass [{tests[:20]!r}...] for a single test"
        )
    if isinstance(tests, Set):
        raise TypeError(
            f"tests must be a list or tuple, got a {type(tests).__name__}, whose order is "
            "undefined (per_test follows the order of tests): pass list(...) in your order"
        )
    try:
        listed = list(tests)
    except TypeError:
        raise TypeError(f"tests must be a list of str, got {type(tests).__name__}") from None
    for index, test in enumerate(listed):
        if not isinstance(test, str):
            raise TypeError(f"tests[{index}] must be a str, got {type(test).__name__}")
    return listed


def check_limits(timeout_s: Any, memory_mb: Any) -> tuple[float, int]:
    """``(timeout_s, memory_mb)`` as a float and an int, once both are valid."""
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, numbers.Real):
        raise TypeError(f"timeout_s must be a number of seconds, got {timeout_s!r}")
    seconds = float(timeout_s)
    if not 0 < seconds <= MAX_TIMEOUT_S:  # NaN fails too
        raise ValueError(
            f"timeout_s must be > 0 and at most {MAX_TIMEOUT_S:g} (a finite number of "
            f"seconds), got {timeout_s!r}"
        )
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, numbers.Integral):
        raise TypeError(f"memory_mb must be an int number of MiB, got {memory_mb!r}")
    mib = int(memory_mb)
    if mib < MIN_MEMORY_MB:
        raise ValueError(
            f"memory_mb must be >= {MIN_MEMORY_MB} (the interpreter needs it), got {memory_mb}"
        )
    if mib > MAX_MEMORY_MB:
        raise ValueError(f"memory_mb must be at most {MAX_MEMORY_MB} (1 TiB), got {memory_mb}")
    return seconds, mib


def check_context(context: Any) -> str:
    """``context`` if it is a ``str`` (empty: no trusted code)."""
    if not isinstance(context, str):
        raise TypeError(f"context must be a str of trusted code (or ''), got {context!r:.60}")
    return context


def check_jobs(jobs: Iterable[Any]) -> list[tuple[str, list[str], str]]:
    """`run_many`'s jobs as ``(program, tests, context)``, every one checked first."""
    if isinstance(jobs, str | bytes | Set) or not isinstance(jobs, Iterable):
        raise TypeError(
            "jobs must be a list of (program, tests) or (program, tests, context) tuples, "
            f"got {type(jobs).__name__}" + (" (unordered)" if isinstance(jobs, Set) else "")
        )
    checked = []
    for index, job in enumerate(jobs):
        if not isinstance(job, tuple | list) or len(job) not in (2, 3):
            raise TypeError(
                f"jobs[{index}] must be a tuple (program, tests) or (program, tests, context), "
                f"got {job!r:.80}"
            )
        try:
            program = check_program(job[0])
            tests = check_tests(job[1])
            context = check_context(job[2] if len(job) == 3 else "")
        except TypeError as error:
            raise TypeError(f"jobs[{index}]: {error}") from None
        checked.append((program, tests, context))
    return checked
