"""Shared fixtures: small text builders, a broken sandbox, a live OpenAI-compatible server."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator

import pytest
from serving import serve_tiny_model


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


@pytest.fixture(scope="session")
def tiny_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """``(base_url, model)`` of ``transformers serve`` on 127.0.0.1 serving the tiny model,
    started once per session (about 15 s) for every test that talks to a served model."""
    pytest.importorskip("fastapi")  # transformers serve needs transformers[serving]
    with serve_tiny_model(tmp_path_factory.mktemp("tiny-model")) as server:
        yield server
