"""Where one training step's time goes: a demo-like MAGRPO step, stage by stage.

The settings of ``configs/demo.yaml`` (the embedded SmolLM2-135M-Instruct, one LoRA adapter
per agent, tldr_v0, G=4, 64 new tokens, temperature 0.9, token-mean loss); one warm-up step,
then ``--steps`` timed ones. Each stage is timed where the trainer calls it: sampling (the
rollout, env scoring included), the log-prob recomputation (forward pass of the loss), the
backward pass and the optimiser step. ``--dtype bfloat16`` runs the same step in bfloat16
weights; the recorded-vs-recomputed log-prob match of the sampled completions is reported
either way (``logprob_max_abs_diff``).

Usage: ``python benchmarks/train_step.py [--quick] [--dtype bfloat16] [--profile] [--backend fused
--generation-dtype auto] [--autocast-dtype auto]`` (the sampler: ``--backend`` and its
``--generation-dtype``; the loss's ``--autocast-dtype``);
``--profile`` prints torch.profiler's top operators of one timed step. Prints one JSON object
on its last line: ``{"step_s": ..., "sampling_s": ..., "logprob_s": ..., "backward_s": ...,
"optimizer_s": ..., "tokens_per_second": ..., "logprob_max_abs_diff": ..., "peak_rss_mb": ...}``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from collections import defaultdict
from typing import Any


def _timed_trainer(config: Any) -> Any:
    """A MAGRPO trainer whose stages add their wall time to ``trainer.timings``."""
    import torch

    from llm_marl.baselines.magrpo import MAGRPOTrainer

    class TimedTrainer(MAGRPOTrainer):
        def __init__(self, config: Any) -> None:
            super().__init__(config)
            self.timings: defaultdict[str, float] = defaultdict(float)
            self.logprob_gap = 0.0

        def roll_out(self) -> Any:
            start = time.perf_counter()
            out = super().roll_out()
            self.timings["sampling_s"] += time.perf_counter() - start
            return out

        def loss(self, task: Any, scale: float) -> Any:
            logprobs = self.team.logprobs
            forward = 0.0

            def timed(completions: Any, **kwargs: Any) -> Any:
                nonlocal forward
                start = time.perf_counter()
                values = logprobs(completions, **kwargs)
                forward += time.perf_counter() - start
                with torch.no_grad():
                    for c, v in zip(completions, values, strict=True):
                        gap = float((c.logprobs - v.detach().cpu()).abs().max())
                        self.logprob_gap = max(self.logprob_gap, gap)
                return values

            self.team.logprobs = timed  # type: ignore[method-assign]
            start = time.perf_counter()
            try:
                out = super().loss(task, scale)
            finally:
                del self.team.logprobs
            self.timings["logprob_s"] += forward
            self.timings["backward_s"] += time.perf_counter() - start - forward
            return out

        def optimizer_step(self) -> Any:
            start = time.perf_counter()
            out = super().optimizer_step()
            self.timings["optimizer_s"] += time.perf_counter() - start
            return out

    return TimedTrainer(config)


def run(
    steps: int,
    dtype: str | None,
    profile: bool,
    backend: str = "hf",
    generation_dtype: str = "float32",
    autocast_dtype: str = "float32",
) -> dict[str, Any]:
    """Time ``steps`` demo-like steps after one warm-up step."""
    import torch

    from llm_marl.baselines.magrpo import MAGRPOConfig

    with tempfile.TemporaryDirectory() as out:
        config = MAGRPOConfig(
            env="tldr_v0",
            model="embedded",
            num_generations=4,
            temperature=0.9,
            max_new_tokens=64,
            learning_rate=1e-3,
            loss_aggregation="token_mean",
            scale_by_std=True,
            num_steps=steps + 1,
            dtype=dtype,
            generation_backend=backend,
            generation_dtype=generation_dtype,
            autocast_dtype=autocast_dtype,
            output_dir=out,
            run_name="profile",
            progress=False,
        )
        trainer = _timed_trainer(config)
        trainer.train_step()  # warm-up
        trainer.timings.clear()
        step_times, rates = [], []
        for index in range(steps):
            start = time.perf_counter()
            if profile and index == steps - 1:
                with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as p:
                    metrics, _ = trainer.train_step()
                print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
            else:
                metrics, _ = trainer.train_step()
            step_times.append(time.perf_counter() - start)
            rates.append(metrics["tokens_per_second"])
        result = {name: round(value / steps, 2) for name, value in trainer.timings.items()}
    return {
        "step_s": round(statistics.mean(step_times), 2),
        **result,
        "tokens_per_second": round(statistics.median(rates), 1),
        "logprob_max_abs_diff": trainer.logprob_gap,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "steps": steps,
        "dtype": dtype or "float32",
        "backend": backend,
        "generation_dtype": generation_dtype,
        "autocast_dtype": autocast_dtype,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 timed steps instead of 5")
    parser.add_argument("--steps", type=int, default=None, help="timed steps")
    parser.add_argument("--dtype", default=None, help="torch dtype of the weights")
    parser.add_argument("--profile", action="store_true", help="torch.profiler table")
    parser.add_argument("--backend", default="hf", help="generation backend: hf, fused, vllm")
    parser.add_argument("--generation-dtype", default="float32", help="the sampler's dtype")
    parser.add_argument("--autocast-dtype", default="float32", help="the loss's autocast dtype")
    args = parser.parse_args()
    steps = args.steps or (2 if args.quick else 5)
    figures = run(
        steps, args.dtype, args.profile, args.backend, args.generation_dtype, args.autocast_dtype
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
