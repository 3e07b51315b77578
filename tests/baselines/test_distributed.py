"""Data parallel for real: two gloo processes started by the documented CPU launcher
(``accelerate launch --config_file configs/accelerate/cpu-2proc.yaml``) against one process.

The same global batch (four tasks per update, two per process) must give the same adapters
after a few updates, within float tolerance; only process 0 writes the run folder, and the
checkpoint of the 2-process run resumes in one process as if one process had run throughout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from serving import free_port
from toy_env import parallel_env

import llm_marl
from llm_marl.baselines import MAGRPOConfig, MAGRPOTrainer
from llm_marl.models import LoRATeam, load_policy

WORKER = Path(__file__).with_name("dp_worker.py")
LAUNCH_CONFIG = Path(__file__).parents[2] / "configs" / "accelerate" / "cpu-2proc.yaml"
RUN = "magrpo-digits_v0-seed0"


def _settings(output_dir: Path, num_steps: int, **extra: Any) -> dict[str, Any]:
    return {
        "env": "digits_v0",
        "model": "tiny",
        "num_generations": 2,
        "max_new_tokens": 4,
        "tasks_per_step": 4,
        "learning_rate": 1e-2,
        "num_steps": num_steps,
        "output_dir": str(output_dir),
        "progress": False,
        **extra,
    }


def _adapters(checkpoint: Path) -> dict[str, torch.Tensor]:
    """Every LoRA matrix of the team saved in ``checkpoint``, by parameter name."""
    team = load_policy(str(checkpoint / "team"))
    assert isinstance(team, LoRATeam)
    return {n: p.detach().clone() for n, p in team.model.named_parameters() if p.requires_grad}


def _assert_same(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert got.keys() == expected.keys() and expected
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-5)
    # LoRA's B matrices start at zero: non-zero ones show the updates did change the adapters.
    moved = [n for n, p in expected.items() if "lora_B" in n and p.abs().max() > 1e-4]
    assert len(moved) == sum("lora_B" in n for n in expected), "an adapter never moved"


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkpoints folder of a 3-step 1-process run of the same settings."""
    llm_marl.register("digits_v0", parallel_env, override=True)  # before the autouse one
    out = tmp_path_factory.mktemp("dp1")
    MAGRPOTrainer(MAGRPOConfig(**_settings(out, 3, checkpoint_every=1))).train()
    return out / RUN / "checkpoints"


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A 2-step run of two gloo processes: its run folder and what the processes printed."""
    out = tmp_path_factory.mktemp("dp2")
    command = [sys.executable, "-m", "accelerate.commands.launch"]
    command += ["--config_file", str(LAUNCH_CONFIG), "--main_process_port", str(free_port())]
    command += [str(WORKER), json.dumps(_settings(out, 2))]
    paths = os.pathsep.join([str(WORKER.parent), str(WORKER.parents[1])])  # toy_env, serving
    env = {**os.environ, "PYTHONPATH": paths}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return out / RUN, done.stdout


def test_two_processes_match_one(two_processes: tuple[Path, str], one_process: Path) -> None:
    """Two processes really ran, and their adapters equal a 1-process run's (and moved)."""
    run, printed = two_processes
    assert sorted(re.findall(r"process \d+ of \d+", printed)) == [
        "process 0 of 2",
        "process 1 of 2",
    ]
    got = _adapters(run / "checkpoints" / "step-000002")
    _assert_same(got, _adapters(one_process / "step-000002"))


def test_process_0_alone_writes_the_run(two_processes: tuple[Path, str]) -> None:
    """One metrics line per step, over all four tasks; one checkpoint per save."""
    run, _ = two_processes
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    assert all(r["nodes"] == 4 for r in records)  # one tree per task of the whole update
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-000002"]


def test_resume_on_one_process(
    two_processes: tuple[Path, str], one_process: Path, tmp_path: Path
) -> None:
    """The 2-process checkpoint resumes in one process as if one process had run all along."""
    run, _ = two_processes
    shutil.copytree(run, tmp_path / RUN)
    resumed = MAGRPOTrainer(MAGRPOConfig(**_settings(tmp_path, 3, resume=True))).train()
    _assert_same(_adapters(resumed.checkpoint), _adapters(one_process / "step-000003"))
