"""Ctrl-C: the run stops after the current step with a checkpoint, the plot and the resume
command, and resumes as if it had never stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from llm_marl.baselines import MAGRPOConfig, TrainingInterrupted
from llm_marl.baselines.interrupt import StopRequest
from llm_marl.baselines.magrpo import MAGRPOTrainer
from llm_marl.baselines.run_log import read_metrics

TIMING = ("step_seconds", "tokens_per_second")


def test_the_first_ctrl_c_asks_to_stop_and_the_second_interrupts() -> None:
    # As in a terminal (a suite started in the background inherits an ignored SIGINT).
    outside = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with StopRequest() as stop:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)  # the handler runs between bytecodes of the main thread
            assert stop.requested
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    finally:
        signal.signal(signal.SIGINT, outside)


class _CtrlCAt(MAGRPOTrainer):
    """Presses Ctrl-C ``presses`` times right after step ``at`` updated the weights."""

    at, presses = 2, 1

    def train_step(self) -> Any:
        out = super().train_step()
        if self.step == self.at:
            for _ in range(self.presses):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.01)
        return out


def _metrics(path: Path) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in read_metrics(path)]


def test_ctrl_c_finishes_the_step_saves_it_and_the_run_resumes_identically(
    fast: dict[str, Any],
) -> None:
    settings = {**fast, "num_steps": 3, "checkpoint_every": 0, "max_new_tokens": 6}
    with pytest.raises(TrainingInterrupted) as stopped:
        _CtrlCAt(MAGRPOConfig(**settings, run_name="cut")).train()
    run = Path(fast["output_dir"]) / "cut"
    assert stopped.value.step == 2 and stopped.value.checkpoint == run / "checkpoints/step-000002"
    assert stopped.value.plot == run / "reward.png" and stopped.value.plot.is_file()
    MAGRPOTrainer(MAGRPOConfig(**settings, run_name="cut", resume=True)).train()
    MAGRPOTrainer(MAGRPOConfig(**settings, run_name="whole")).train()
    whole = _metrics(Path(fast["output_dir"]) / "whole" / "metrics.jsonl")
    assert _metrics(run / "metrics.jsonl") == whole and len(whole) == 3


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_newest_checkpoint(
    fast: dict[str, Any],
) -> None:
    trainer = _CtrlCAt(MAGRPOConfig(**fast, num_steps=4, checkpoint_every=1, run_name="cut"))
    trainer.presses = 2
    with pytest.raises(TrainingInterrupted) as stopped:
        trainer.train()
    assert stopped.value.checkpoint is not None
    assert stopped.value.checkpoint.name == "step-000001"  # step 2 was cut in the middle


def test_the_command_line_prints_how_to_resume_after_ctrl_c(tmp_path: Path) -> None:
    """A real SIGINT to `llm-marl train`: exit status 130, the summary and the resume line."""
    out_dir = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    argv = [sys.executable, "-m", "llm_marl", "train", "--env", "toy_env:parallel_env"]
    argv += ["--model", "tiny", "--num-steps", "100000", "--max-new-tokens", "4"]
    argv += ["--output-dir", str(out_dir), "--run-name", "r", "--no-progress"]
    argv += ["--checkpoint-every", "0"]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    metrics = out_dir / "r" / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 2):
        assert process.poll() is None and time.monotonic() < deadline, process.stderr
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, err = (text.decode() for text in process.communicate(timeout=300))
    assert process.returncode == 130, err
    step = len(read_metrics(metrics))
    assert (
        f"interrupted at step {step}; resume with: llm-marl train --output-dir {out_dir} "
        "--run-name r --resume\n"
    ) in err
    assert f"checkpoint: {out_dir / 'r' / 'checkpoints' / f'step-{step:06d}'}" in out
    assert f"plot:       {out_dir / 'r' / 'reward.png'}" in out
    assert "Traceback" not in err


def test_ctrl_c_during_the_last_step_ends_the_run_normally(fast: dict[str, Any]) -> None:
    trainer = _CtrlCAt(MAGRPOConfig(**fast, num_steps=2, run_name="last"))
    try:
        result = trainer.train()
    except TrainingInterrupted:  # a KeyboardInterrupt: pytest would stop the session
        pytest.fail("a run whose last step finished was reported as interrupted")
    assert result.checkpoint.name == "step-000002"


def test_the_step_a_ctrl_c_stops_at_logs_its_samples(fast: dict[str, Any]) -> None:
    settings = {**fast, "num_steps": 50, "log_samples_every": 20, "run_name": "cut"}
    with pytest.raises(TrainingInterrupted):
        _CtrlCAt(MAGRPOConfig(**settings)).train()
    samples = (Path(fast["output_dir"]) / "cut" / "samples.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in samples] == [1, 2]  # the first and the last
