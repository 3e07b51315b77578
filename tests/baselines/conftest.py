"""Fixtures of the trainer tests: the toy env registered as ``digits_v0``, a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from toy_env import parallel_env

import llm_marl


@pytest.fixture(autouse=True)
def digits_env() -> None:
    """``digits_v0``: the toy env, registered the way a user registers their own."""
    llm_marl.register("digits_v0", parallel_env, override=True)


@pytest.fixture
def fast(tmp_path: Path) -> dict[str, Any]:
    """Config settings of a quick run on the toy env with the tiny model."""
    return {
        "env": "digits_v0",
        "model": "tiny",
        "num_generations": 4,
        "max_new_tokens": 8,
        "output_dir": str(tmp_path / "runs"),
        "progress": False,
    }
