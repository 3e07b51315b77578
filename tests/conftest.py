"""Shared fixtures: small text builders, a broken sandbox, a live OpenAI-compatible server,
one vLLM engine for the ``vllm`` tests."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from typing import Any

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


#: The agents of the vLLM engine's team: those of the trainer tests' toy env (``digits_v0``).
VLLM_AGENTS = ("left_0", "right_1")


@pytest.fixture(scope="session")
def vllm_engine() -> Iterator[tuple[Any, Any]]:
    """``(team, backend)``: a 2-agent LoRA team on the embedded model and a float32 vLLM
    engine serving it (CPU defaults: 1 GiB KV cache, eager), started once per session (engine
    start-up is most of the ``vllm`` tests' time). Tests may change the team's adapters and
    must sync the backend after doing so."""
    pytest.importorskip("vllm")
    import torch

    from llm_marl.models import load_policy
    from llm_marl.models.vllm_backend import VLLMBackend

    torch.manual_seed(0)
    team = load_policy("embedded", agents=list(VLLM_AGENTS))
    backend = VLLMBackend(team, max_model_len=512)
    yield team, backend
    backend.close()
