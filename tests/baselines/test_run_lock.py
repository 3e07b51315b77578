"""One trainer per run folder: a live holder is refused by name, a dead one's lock taken over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from toy_env import DigitsEnv

from llm_marl.baselines import MAGRPOConfig, MAGRPOTrainer
from llm_marl.baselines.run_lock import LOCK_FILE, RunFolderError, RunFolderInUse, RunLock

RUN = "magrpo-digits_v0-seed0"
_HOLD = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from llm_marl.baselines.run_lock import RunLock\n"
    "lock = RunLock(Path(sys.argv[1]))\n"
    "print('locked', flush=True)\n"
    "time.sleep(120)\n"
)


@pytest.fixture
def holder(fast: dict[str, Any]) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock of the default run's folder."""
    run = Path(fast["output_dir"]) / RUN
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(run)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline() == "locked\n"
    yield process
    process.kill()
    process.wait()


def test_a_second_trainer_is_refused_with_the_holders_pid(
    fast: dict[str, Any], holder: subprocess.Popen[str]
) -> None:
    message = rf"in use by another trainer \(pid {holder.pid} on "
    with pytest.raises(RunFolderInUse, match=message):  # before any model loads
        MAGRPOTrainer(MAGRPOConfig(**{**fast, "model": "/no/such/model"}))
    with pytest.raises(RunFolderInUse, match=message):
        RunLock(Path(fast["output_dir"]) / RUN)


def test_overwrite_respects_a_live_holder(
    fast: dict[str, Any], holder: subprocess.Popen[str]
) -> None:
    run = Path(fast["output_dir"]) / RUN
    (run / "metrics.jsonl").write_text('{"step": 1, "team_reward_mean": 0.5}\n')
    with pytest.raises(RunFolderInUse, match=f"pid {holder.pid}"):
        MAGRPOTrainer(MAGRPOConfig(**fast, overwrite=True))
    assert (run / "metrics.jsonl").read_text().startswith('{"step": 1')


def test_the_lock_of_a_killed_trainer_is_taken_over(
    fast: dict[str, Any], holder: subprocess.Popen[str]
) -> None:
    run = Path(fast["output_dir"]) / RUN
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert f"pid {holder.pid} " in (run / LOCK_FILE).read_text()  # the stale lock file stays
    result = MAGRPOTrainer(MAGRPOConfig(**fast, num_steps=1, overwrite=True)).train()
    assert [r["step"] for r in result.metrics] == [1]
    assert f"pid {os.getpid()} " in (run / LOCK_FILE).read_text()


class _SecondTrainerEnv(DigitsEnv):
    """At its first reset (inside the first trainer's run) it sets up a second trainer."""

    def __init__(self, settings: dict[str, Any]) -> None:
        super().__init__()
        self.settings, self.refusals = settings, []

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        if not self.refusals:
            for overwrite in (False, True):
                config = MAGRPOConfig(**self.settings, resume=not overwrite, overwrite=overwrite)
                with pytest.raises(RunFolderInUse) as caught:
                    MAGRPOTrainer(config).train()
                self.refusals.append(str(caught.value))
        return super().reset(seed=seed, options=options)


def test_a_running_trainer_holds_its_folder_until_it_ends(fast: dict[str, Any]) -> None:
    settings = {**fast, "num_steps": 2, "checkpoint_every": 1}
    MAGRPOTrainer(MAGRPOConfig(**settings)).train()
    env = _SecondTrainerEnv({**settings, "num_steps": 3})
    MAGRPOTrainer(MAGRPOConfig(**{**settings, "num_steps": 3}, resume=True), env=env).train()
    assert len(env.refusals) == 2 and all(f"pid {os.getpid()} " in r for r in env.refusals)
    records = (
        MAGRPOTrainer(MAGRPOConfig(**{**settings, "num_steps": 4}, resume=True)).train().metrics
    )
    assert [r["step"] for r in records] == [1, 2, 3, 4]  # the lock went with the first run


def test_a_folder_written_after_set_up_is_refused(fast: dict[str, Any]) -> None:
    settings = {**fast, "num_steps": 1}
    late = MAGRPOTrainer(MAGRPOConfig(**settings))  # set up while the folder is empty
    MAGRPOTrainer(MAGRPOConfig(**settings)).train()  # another trainer runs meanwhile
    with pytest.raises(RunFolderError, match="changed after this trainer was set up"):
        late.train()
