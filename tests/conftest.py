"""Shared fixtures: small text builders used across the test tree."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator

import pytest


@pytest.fixture
def fixed_answers() -> dict[str, str]:
    """Plain answers with many distinct words, for envs whose agents are not yet known."""
    return {
        "short": "The author asks whether to move to a new city for a better paid job.",
        "long": (
            "The author, who has lived in the same town for ten years, received an offer that "
            "pays far more; however, moving means leaving friends and an ageing parent behind. "
            "Therefore they weigh career growth against family duty and ask readers for "
            "advice, for example how others handled similar relocations."
        ),
    }


@pytest.fixture
def broken_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The code sandbox fails for real while the test runs: this process's zygote is killed
    and no new one can start (the persistent fault of ``tests/sandbox/test_sandbox_faults``),
    so every program gets ``sandbox_error``; afterwards the sandbox starts again."""
    from llm_marl.sandbox.spawner import zygote

    old = zygote()
    os.kill(old.process.pid, signal.SIGKILL)
    old.process.wait()
    monkeypatch.setattr(sys, "executable", "/bin/false")
    yield
    monkeypatch.undo()
