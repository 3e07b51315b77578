"""Data-parallel scaling: updates per second of MAGRPO with 1 and 2 processes, same global batch.

Each measurement is a real run of ``llm-marl train`` on ``tldr_v0`` (the tiny random model by
default, LoRA), started by the documented launcher: one plain process, then two processes under
``accelerate launch --config_file configs/accelerate/cpu-2proc.yaml`` (gloo on CPU; on a CUDA
machine pass ``--config configs/accelerate/multi-gpu.yaml``). Both runs do the same updates
(``--tasks-per-step`` tasks each, dealt out across the processes); the rate is
``steps / sum(step_seconds)`` over the steps after the first (start-up and warm-up excluded),
read from the run's ``metrics.jsonl``.

Usage: ``python benchmarks/scaling.py [--quick] [--model tiny|embedded|HUB_ID]``. Prints one JSON
object on its last line: ``{"procs_1_steps_s": ..., "procs_2_steps_s": ..., "efficiency": ...}``
(efficiency = speed-up / 2) plus the settings used.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CPU_CONFIG = ROOT / "configs" / "accelerate" / "cpu-2proc.yaml"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def steps_per_second(procs: int, args: argparse.Namespace, out: Path, launch_config: Path) -> float:
    """Updates per second of one run with ``procs`` processes (steps after the first)."""
    train = ["-m", "llm_marl", "train", "--env", "tldr_v0", "--model", args.model]
    train += ["--num-steps", str(args.steps), "--tasks-per-step", str(args.tasks)]
    train += ["--num-generations", str(args.generations), "--max-new-tokens", str(args.tokens)]
    train += ["--output-dir", str(out / f"procs{procs}"), "--no-progress", "--overwrite"]
    launcher = [sys.executable]
    if procs > 1:
        launcher += ["-m", "accelerate.commands.launch", "--config_file", str(launch_config)]
        launcher += ["--num_processes", str(procs), "--main_process_port", str(_free_port())]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run(launcher + train, check=True, env=env, stdout=subprocess.DEVNULL)
    metrics = out / f"procs{procs}" / "magrpo-tldr_v0-seed0" / "metrics.jsonl"
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    timed = [r["step_seconds"] for r in records[1:]]  # the first step warms up
    return len(timed) / sum(timed)


def main() -> None:
    """Run both measurements and print the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter steps")
    parser.add_argument("--model", default="tiny", help="tiny (default), embedded or a hub id")
    parser.add_argument("--config", type=Path, default=CPU_CONFIG, help="accelerate config")
    args = parser.parse_args()
    args.steps = 3 if args.quick else 6
    args.tasks = 4 if args.quick else 8
    args.generations = 4
    args.tokens = 16 if args.quick else 32
    with tempfile.TemporaryDirectory() as folder:
        one = steps_per_second(1, args, Path(folder), args.config)
        two = steps_per_second(2, args, Path(folder), args.config)
    result = {
        "procs_1_steps_s": round(one, 4),
        "procs_2_steps_s": round(two, 4),
        "efficiency": round(two / one / 2, 3),
        "model": args.model,
        "tasks_per_step": args.tasks,
        "num_generations": args.generations,
        "max_new_tokens": args.tokens,
        "timed_steps": args.steps - 1,
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
