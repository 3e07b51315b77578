"""Training speed and memory side by side: TRL and CoMLRL against this project's trainers.

Four runs do the same work: the embedded SmolLM2-135M-Instruct from one local HF folder, LoRA
(r=16, alpha=32, q_proj and v_proj), G=4 samples per prompt, the same sampling settings, the
same tldr_v0 train task every step, scored by the env's own team reward, one prompt per
update, learning rate 1e-3, no KL term:

- ``trl``: TRL's ``GRPOTrainer``, one model, the env's single-agent view (the prompt asks for
  both parts; :mod:`llm_marl.integrations.trl` gives the data set and reward);
- ``ours_grpo``: this project's ``grpo`` on the same single-agent view;
- ``comlrl``: CoMLRL's ``MAGRPOTrainer`` (the MAGRPO authors' library), 2 agents, one full
  model per agent, one LoRA adapter each;
- ``ours_magrpo``: this project's ``magrpo``, 2 agents (one base, one adapter per agent).

Each run is a fresh subprocess (its peak resident memory is its own, ``ru_maxrss``); runs are
interleaved (trl, ours_grpo, comlrl, ours_magrpo, then again) so a shared machine's load
falls on all of them alike; each run's first step (warm-up) is excluded and seconds per step
is the mean of the rest, then the median over rounds. Ratios are ours / peer: below 1 means
faster (or smaller). Nothing is downloaded. TRL and CoMLRL come from the ``bench`` extra
(``pip install -e ".[bench]"``; CoMLRL with ``--no-deps`` if it would move torch).

Usage: ``python benchmarks/trainer_vs_peers.py [--quick] [--ours-backend fused]`` (our
trainers sample with HF ``generate`` or the fused sampler, float32 either way). Prints one
JSON object on its last line: ``{"trl_s_per_step": ..., "ours_grpo_s_per_step": ...,
"comlrl_s_per_step": ..., "ours_magrpo_s_per_step": ..., "grpo_ratio": ..., "magrpo_ratio": ...,
"trl_peak_mb": ..., "ours_grpo_peak_mb": ..., "comlrl_peak_mb": ..., "ours_magrpo_peak_mb": ...}``
plus the settings and the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

RUNS = ("trl", "ours_grpo", "comlrl", "ours_magrpo")
ENV = "tldr_v0"
#: One task for every step of every run: the same prompts, so the same work per step.
ENV_KWARGS = {"max_tasks": 1}
G = 4
TEMPERATURE = 0.9
LEARNING_RATE = 1e-3
LORA = {"r": 16, "alpha": 32, "target_modules": ("q_proj", "v_proj")}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _model_dir() -> str:
    from llm_marl.models.embedded import embedded_model_dir

    return str(embedded_model_dir(progress=False))


def _peft_config() -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=LORA["r"],
        lora_alpha=LORA["alpha"],
        lora_dropout=0.0,
        target_modules=list(LORA["target_modules"]),
        task_type="CAUSAL_LM",
    )


def _run_trl(steps: int, new_tokens: int, out: str) -> list[float]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from llm_marl.integrations.trl import trl_dataset, trl_reward

    times: list[float] = []

    class StepTimer(TrainerCallback):  # type: ignore[misc]
        def on_step_begin(self, *args: Any, **kwargs: Any) -> None:
            self.start = time.perf_counter()

        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            times.append(time.perf_counter() - self.start)

    folder = _model_dir()
    data = trl_dataset(ENV, "train", **ENV_KWARGS)
    data = data.select([0] * (steps + 1))  # the one task, once per step
    args = GRPOConfig(
        output_dir=out,
        max_steps=steps + 1,
        per_device_train_batch_size=G,
        num_generations=G,
        gradient_accumulation_steps=1,
        max_completion_length=new_tokens,
        temperature=TEMPERATURE,
        top_p=1.0,
        top_k=0,
        learning_rate=LEARNING_RATE,
        beta=0.0,
        num_iterations=1,
        use_cpu=True,
        bf16=False,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        seed=0,
    )
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=trl_reward(ENV, **ENV_KWARGS),
        args=args,
        train_dataset=data,
        processing_class=AutoTokenizer.from_pretrained(folder, padding_side="left"),
        peft_config=_peft_config(),
        callbacks=[StepTimer()],
    )
    trainer.train()
    return times


def _run_comlrl(steps: int, new_tokens: int, out: str) -> list[float]:
    import torch
    from comlrl.trainers.reinforce.magrpo import MAGRPOConfig, MAGRPOTrainer
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import llm_marl

    folder = _model_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    env = llm_marl.make(ENV, **ENV_KWARGS)
    agents = list(env.possible_agents)
    observations, _ = env.reset()
    task = env.tasks[0].task_id
    # The same chat-formatted prompts as ours (CoMLRL tokenizes the text as it is).
    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": observations[a]["text"]}],
            tokenize=False,
            add_generation_prompt=True,
        )
        for a in agents
    ]

    def reward(completions_0: list[str], completions_1: list[str], **_: Any) -> list[float]:
        env.reset(options={"task_id": task})
        _, rewards, _, _, _ = env.step({agents[0]: completions_0[0], agents[1]: completions_1[0]})
        return [float(rewards[agents[0]])]

    models = []
    for _ in agents:  # CoMLRL's layout: one full model per agent
        base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        models.append(get_peft_model(base, _peft_config()))
    config = MAGRPOConfig(
        num_train_epochs=1,
        agent_learning_rate=LEARNING_RATE,
        num_agents=2,
        num_generations=G,
        max_new_tokens=new_tokens,
        temperature=TEMPERATURE,
        top_p=1.0,
        top_k=None,
        num_turns=1,
        early_termination_threshold=None,
        eval_interval=0,
        rollout_buffer_size=1,
        logging_steps=1,
    )
    trainer = MAGRPOTrainer(
        agents=models,
        num_agents=2,
        tokenizer=tokenizer,
        train_dataset=Dataset.from_dict({"task": [task] * (steps + 1)}),
        reward_func=reward,
        formatters=[lambda _item, p=p: p for p in prompts],
        args=config,
    )
    times: list[float] = []
    step = trainer._train_step_returns  # one prompt: rollout, rewards, one update

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = step(*args, **kwargs)
        times.append(time.perf_counter() - start)
        return result

    trainer._train_step_returns = timed
    trainer.train()
    return times


#: Our trainers' sampler (``--ours-backend``): ``hf`` or ``fused``, both in float32 (the
#: peers' numerics: the same distribution, the same float32 model).
OURS_BACKEND = os.environ.get("LLM_MARL_BENCH_BACKEND", "hf")


def _run_ours(algo: str, steps: int, new_tokens: int, out: str) -> list[float]:
    from llm_marl.baselines.registry import algorithm

    spec = algorithm(algo)
    trainer_class = spec.trainer_class()
    config = spec.config_class(
        env=ENV,
        env_kwargs=dict(ENV_KWARGS),
        model="embedded",
        lora_r=LORA["r"],
        lora_alpha=LORA["alpha"],
        num_generations=G,
        temperature=TEMPERATURE,
        top_p=1.0,
        max_new_tokens=new_tokens,
        learning_rate=LEARNING_RATE,
        scale_by_std=True,
        num_steps=steps + 1,
        output_dir=out,
        run_name=algo,
        progress=False,
        generation_backend=OURS_BACKEND,
    )
    trainer = trainer_class(config)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        trainer.train_step()
        times.append(time.perf_counter() - start)
    return times


RUNNERS: dict[str, Callable[[int, int, str], list[float]]] = {
    "trl": _run_trl,
    "ours_grpo": lambda s, n, o: _run_ours("grpo", s, n, o),
    "comlrl": _run_comlrl,
    "ours_magrpo": lambda s, n, o: _run_ours("magrpo", s, n, o),
}


def one_run(name: str, steps: int, new_tokens: int) -> dict[str, Any]:
    """Run ``name`` for a warm-up step plus ``steps`` timed ones, in this process."""
    import torch

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as out:
        times = RUNNERS[name](steps, new_tokens, out)
    if len(times) < steps + 1:
        raise RuntimeError(f"{name} ran {len(times)} steps, expected {steps + 1}")
    return {"s_per_step": statistics.mean(times[1:]), "peak_mb": _peak_mb(), "times": times}


def _in_subprocess(name: str, steps: int, new_tokens: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--run", name, "--steps", str(steps)]
    command += ["--new-tokens", str(new_tokens)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"the {name} run failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 2 timed steps")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per run")
    parser.add_argument("--new-tokens", type=int, default=None, help="max new tokens")
    parser.add_argument("--run", choices=RUNS, help=argparse.SUPPRESS)
    parser.add_argument(
        "--ours-backend", choices=("hf", "fused"), default=None, help="our sampler (float32)"
    )
    args = parser.parse_args()
    if args.ours_backend:  # the runs are subprocesses: they read it from the environment
        os.environ["LLM_MARL_BENCH_BACKEND"] = args.ours_backend
    steps = args.steps or (2 if args.quick else 4)
    new_tokens = args.new_tokens or (32 if args.quick else 64)
    if args.run:
        print(json.dumps(one_run(args.run, steps, new_tokens)))
        return
    rounds = args.rounds or (1 if args.quick else 2)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in RUNS}
    for round_index in range(rounds):
        for name in RUNS:
            print(f"round {round_index + 1}/{rounds}: {name}", file=sys.stderr, flush=True)
            results[name].append(_in_subprocess(name, steps, new_tokens))
    speed = {n: statistics.median(r["s_per_step"] for r in results[n]) for n in RUNS}
    peak = {n: max(r["peak_mb"] for r in results[n]) for n in RUNS}
    summary: dict[str, Any] = {f"{n}_s_per_step": round(speed[n], 2) for n in RUNS}
    summary["grpo_ratio"] = round(speed["ours_grpo"] / speed["trl"], 3)
    summary["magrpo_ratio"] = round(speed["ours_magrpo"] / speed["comlrl"], 3)
    summary.update({f"{n}_peak_mb": round(peak[n], 1) for n in RUNS})
    summary["grpo_memory_ratio"] = round(peak["ours_grpo"] / peak["trl"], 3)
    summary["magrpo_memory_ratio"] = round(peak["ours_magrpo"] / peak["comlrl"], 3)
    summary.update(
        {
            "rounds": rounds,
            "timed_steps": steps,
            "num_generations": G,
            "max_new_tokens": new_tokens,
            "ours_backend": os.environ.get("LLM_MARL_BENCH_BACKEND", "hf"),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "cpus": os.cpu_count(),
        }
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
