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


CONFIG_CODE = """
import sys
from llm_marl.baselines import MAGRPOConfig
from llm_marl.cli import build_parser
from llm_marl.baselines.eval_cli import build_eval_parser
from llm_marl.baselines.reproduce_cli import build_reproduce_parser
MAGRPOConfig(env='tldr_v0'); build_parser(); build_eval_parser(); build_reproduce_parser()
print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers'}))
"""


def test_configs_and_the_cli_parser_do_not_import_torch() -> None:
    """Building configs and the ``llm-marl`` parsers (train, eval, reproduce) stays light, so a
    mistyped option fails at once; trainers and models load torch lazily."""
    result = subprocess.run(
        [sys.executable, "-c", CONFIG_CODE], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
