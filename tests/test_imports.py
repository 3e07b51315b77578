"""Importing the env side must not import torch (nor the optional data stack)."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys, llm_marl, llm_marl.envs
env = llm_marl.make('tldr_v0'); env.reset(seed=0)
env.step({a: 'some words here to score' for a in env.agents})
heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'datasets'})
print(heavy)
"""


def test_envs_do_not_import_torch_or_datasets() -> None:
    """A fresh interpreter builds and steps an env without importing torch or datasets."""
    result = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
