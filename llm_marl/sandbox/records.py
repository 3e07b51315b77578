"""Parent side: the records of one run, parsed strictly, and the `SandboxResult` they prove.

Records are lines ``<nonce> <kind> [<index>] [<text>]`` written by the coordinator ``D`` and
the evaluators (see `harness`). ``D`` ends every run it finishes with a terminal record
(``done``, ``load_error``, ``load_timeout``, ``load_crash`` or ``fault``); a run whose records
stop before one, without a deadline passing, was cut short by the sandbox itself (``D`` never
runs program code and no program can signal it in a namespace mode), so its status is
``sandbox_error``, never ``crashed``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from llm_marl.sandbox.result import SandboxResult

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
_INDEX = re.compile(r"[0-9]{1,6}")
_BARE = frozenset({"ready", "loaded", "load_timeout", "load_crash", "done"})
TERMINAL = frozenset({"done", "load_timeout", "load_crash"})
"""Bare records after which ``D`` writes nothing more (``load_error`` and ``fault`` too)."""


@dataclass
class Records:
    """What the coordinator and the evaluators reported with the right nonce, parsed strictly:
    a malformed or unexpected record is ignored, never raises."""

    total: int
    flags: set[str] = field(default_factory=set)
    load_error: str | None = None
    fault: str | None = None
    """Why ``D`` gave up on the run (a failure of the sandbox, not of the program)."""
    outcomes: dict[int, tuple[str, str]] = field(default_factory=dict)  # index -> (kind, text)

    def add(self, line: str, nonce: str) -> None:
        """Take one record line (without its newline); anything malformed is ignored."""
        head, _, rest = line.partition(" ")
        if head != nonce:
            return
        kind, _, rest = rest.partition(" ")
        if kind in _BARE and not rest:
            self.flags.add(kind)
        elif kind == "load_error" and self.load_error is None:
            self.load_error = rest
        elif kind == "fault" and self.fault is None:
            self.fault = rest or "the coordinator gave up"
        elif kind in ("pass", "fail", "ended"):
            index_text, _, text = rest.partition(" ")
            if not _INDEX.fullmatch(index_text) or (kind == "pass") == bool(text):
                return
            index = int(index_text)
            if index < self.total and index not in self.outcomes:
                self.outcomes[index] = (kind, text)

    @property
    def finished(self) -> bool:
        """Whether ``D`` wrote its terminal record (the run was not cut short)."""
        return bool(self.flags & TERMINAL) or self.load_error is not None or self.fault is not None

    def progress(self, steps: list[int]) -> int:
        """Steps done, counting only the expected records in their order."""
        if "ready" not in self.flags:
            return 0
        if "loaded" not in self.flags:
            return 1
        done = 2
        for index in steps:
            if index not in self.outcomes:
                break
            done += 1
        return done


def scrub(data: bytes | bytearray) -> str:
    """Text without object addresses (``0x7f...`` -> ``0x?``): verdicts stay deterministic."""
    return _ADDRESS.sub("0x?", bytes(data).decode("utf-8", "replace"))


def failed(status: str, message: str, total: int, output: str = "") -> SandboxResult:
    """Every test failed for one reason (``not run: <message>``)."""
    return SandboxResult(
        0, total, status, [False] * total, message, [f"not run: {message}"] * total, output
    )


def sandbox_error(message: str, total: int, output: str = "") -> SandboxResult:
    """The sandbox itself could not judge the program: status ``sandbox_error``."""
    text = message if message.startswith("sandbox error") else f"sandbox error: {message}"
    return SandboxResult(0, total, "sandbox_error", [False] * total, text, [text] * total, output)


def verdict(
    records: Records, tests: list[bytes | str], output: str, timed_out: bool, timeout_s: float
) -> SandboxResult:
    """The result the records prove; ``timed_out``: the caller's deadline ended the run."""
    total = len(tests)
    flags = records.flags
    if "ready" not in flags:
        detail = output.strip().splitlines()[-1:] if output.strip() else []
        why = "did not start in time" if timed_out else "did not start"
        return sandbox_error(
            f"the program's process {why}" + (f" ({detail[0][:300]})" if detail else ""),
            total,
            output,
        )
    if records.fault is not None:
        return sandbox_error(f"the coordinator gave up: {scrub(records.fault.encode())}", total)
    if records.load_error is not None:
        return failed("load_error", scrub(records.load_error.encode()), total, output)
    if not records.finished and not timed_out:
        return sandbox_error("the sandbox's coordinator ended before the run did", total, output)
    if "loaded" not in flags:
        if "load_timeout" in flags or (timed_out and "load_crash" not in flags):
            message = f"Timeout: the program's top level ran over {timeout_s:g} s"
            return failed("timeout", message, total, output)
        message = "Crashed: the program ended its process while loading"
        return failed("crashed", message, total, output)
    return _test_verdicts(records, tests, output, timed_out, timeout_s)


def _test_verdicts(
    records: Records, tests: list[bytes | str], output: str, timed_out: bool, timeout_s: float
) -> SandboxResult:
    errors: list[str | None] = [test if isinstance(test, str) else None for test in tests]
    timeouts = crashes = False
    for index, test in enumerate(tests):
        if isinstance(test, str):
            continue
        kind, text = records.outcomes.get(index, ("", ""))
        if kind == "pass":
            continue
        if kind == "fail":
            errors[index] = scrub(text.encode())
        elif text == "timeout" or (not kind and timed_out):
            errors[index] = f"Timeout: the test ran over {timeout_s:g} s"
            timeouts = True
        else:
            how = text or "the test's process ended without a verdict"
            errors[index] = scrub(f"Crashed: {how}".encode())
            crashes = True
    per_test = [error is None for error in errors]
    failing = [f"test {i}: {error}" for i, error in enumerate(errors) if error is not None]
    status = "timeout" if timeouts else "crashed" if crashes else "ok"
    return SandboxResult(
        sum(per_test), len(tests), status, per_test, failing[0] if failing else None, errors, output
    )
