"""Sampling speed and memory of a 2-agent team on the embedded model (SmolLM2-135M-Instruct).

Speed: one LoRA team (one base, one adapter per agent) samples G completions for each agent's
prompt, either batched across agents in one ``generate`` call (each row through its agent's
adapter) or one agent at a time, and batched through the fused sampler
(:mod:`llm_marl.models.decode`) in float32 and in bfloat16; tokens per second counts real
completion tokens (no padding) over several rounds.

Memory: in a fresh process each, a 2-agent LoRA team and a team of two separate model copies
(``separate=True``) load and sample once; ``*_peak_mb`` is the peak resident memory of that
process above its resident memory after importing torch and transformers (what the team costs),
and ``*_process_peak_mb`` the raw peak. Resident memory is CPU memory: run it on the CPU (on a
GPU it would not see device memory).

Usage: ``python benchmarks/generation.py [--quick]``. Prints one JSON object on its last line:
``{"batched_tok_s": ..., "sequential_tok_s": ..., "speedup": ..., "fused_tok_s": ...,
"fused_bf16_tok_s": ..., "fused_speedup": ..., "fused_bf16_speedup": ..., "team_lora_peak_mb": ...,
"two_models_peak_mb": ..., "memory_ratio": ...}`` plus the settings used.

vLLM against HF (``--vllm``, where vLLM is installed: ``.venv-vllm`` of ``make test-vllm`` has
both): the same 2-agent LoRA team samples the same requests (long prompts, about 285 tokens
each) with the HF backend (one batched ``generate``) and the vLLM backend (one engine, one LoRA
adapter per agent, one ``generate`` call); the engine's start-up is not timed. Prints
``{"hf_tok_s": ..., "vllm_tok_s": ..., "vllm_speedup": ...}`` plus the settings;
``--vllm-dtype bfloat16`` runs the engine in bfloat16 (HF stays float32).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

AGENTS = ("helper_0", "main_1")
PROMPTS = {
    "helper_0": "Write a Python function aux(xs) that returns the sorted unique values of xs.",
    "main_1": "Explain in a short paragraph why unit tests help when two people share code.",
}


def _rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def memory_probe(kind: str, new_tokens: int) -> dict[str, float]:
    """Load a 2-agent team of ``kind`` ("lora" or "separate"), sample once, report memory."""
    import torch
    import transformers  # noqa: F401  (imported before the baseline is read)

    from llm_marl.models import SamplingConfig, load_policy

    torch.manual_seed(0)
    baseline = _current_rss_mb()
    team = load_policy("embedded", agents=list(AGENTS), separate=kind == "separate")
    config = SamplingConfig(num_samples=4, max_new_tokens=new_tokens)
    team.generate([(a, PROMPTS[a]) for a in AGENTS], config)
    peak = _rss_mb()
    return {"peak_mb": peak - baseline, "process_peak_mb": peak}


def _probe_in_subprocess(kind: str, new_tokens: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-probe", kind, "--new-tokens", str(new_tokens)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def throughput(rounds: int, new_tokens: int, samples: int) -> dict[str, float]:
    """Median tokens per second: batched across agents versus one agent at a time (HF
    ``generate``), and batched through the fused sampler in float32 and bfloat16."""
    import torch

    from llm_marl.models import SamplingConfig, load_policy
    from llm_marl.models.decode import FusedDecoding

    team = load_policy("embedded", agents=list(AGENTS))
    config = SamplingConfig(num_samples=samples, max_new_tokens=new_tokens, temperature=0.8)
    requests = [(a, PROMPTS[a]) for a in AGENTS]

    def batched(fused: FusedDecoding | None = None) -> list:
        return [c for group in team.generate(requests, config, fused=fused) for c in group]

    def sequential() -> list:
        return [c for r in requests for group in team.generate([r], config) for c in group]

    runs = {
        "batched": batched,
        "sequential": sequential,
        "fused_float32": lambda: batched(FusedDecoding("float32")),
        "fused_bfloat16": lambda: batched(FusedDecoding("bfloat16")),
    }
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run()  # warm-up
    for round_index in range(rounds):
        for name, run in runs.items():
            torch.manual_seed(round_index)
            start = time.perf_counter()
            tokens = sum(c.num_tokens for c in run())
            rates[name].append(tokens / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


#: A long prompt (about 285 tokens with the chat template) for the vLLM comparison.
LONG_CONTEXT = (
    "Two developers share one repository. One writes helper functions, the other writes the "
    "entry point that calls them. They agree on names and types first, write small tests for "
    "each helper, run the tests before every commit, and review each other's changes. When a "
    "test fails they read the error, find the smallest change that fixes it, and add a test "
    "that would have caught it. "
) * 3


def vllm_comparison(rounds: int, new_tokens: int, samples: int, dtype: str) -> dict[str, float]:
    """Median tokens per second of the HF and the vLLM backend on the same requests."""
    import torch

    from llm_marl.models import SamplingConfig, load_policy
    from llm_marl.models.backends import HFBackend
    from llm_marl.models.vllm_backend import VLLMBackend

    torch.manual_seed(0)
    team = load_policy("embedded", agents=list(AGENTS))
    config = SamplingConfig(num_samples=samples, max_new_tokens=new_tokens, temperature=0.8)
    requests = [(a, LONG_CONTEXT + PROMPTS[a]) for a in AGENTS]
    backends = {"hf": HFBackend(), "vllm": VLLMBackend(team, dtype=dtype, max_model_len=1024)}
    rates: dict[str, list[float]] = {"hf": [], "vllm": []}
    for backend in backends.values():
        warm_up = backend.generate(team, requests, config)
    prompt_tokens = [int(group[0].prompt_ids.shape[0]) for group in warm_up]
    for round_index in range(rounds):
        for name, backend in backends.items():
            torch.manual_seed(round_index)
            start = time.perf_counter()
            groups = backend.generate(team, requests, config)
            tokens = sum(c.num_tokens for group in groups for c in group)
            rates[name].append(tokens / (time.perf_counter() - start))
    backends["vllm"].close()
    return {
        "hf_tok_s": round(statistics.median(rates["hf"]), 1),
        "vllm_tok_s": round(statistics.median(rates["vllm"]), 1),
        "vllm_speedup": round(statistics.median(rates["vllm"]) / statistics.median(rates["hf"]), 2),
        "prompt_tokens": statistics.mean(prompt_tokens),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter completions")
    parser.add_argument("--memory-probe", choices=("lora", "separate"), help=argparse.SUPPRESS)
    parser.add_argument("--new-tokens", type=int, default=None, help="max new tokens per sample")
    parser.add_argument("--vllm", action="store_true", help="HF against vLLM (needs vllm)")
    parser.add_argument("--vllm-dtype", default="float32", help="the vLLM engine's dtype")
    parser.add_argument("--samples", type=int, default=None, help="samples per agent")
    args = parser.parse_args()
    new_tokens = args.new_tokens or (24 if args.quick else 64)
    if args.vllm:
        samples = args.samples or 8
        rounds = 2 if args.quick else 3
        figures = vllm_comparison(rounds, new_tokens, samples, args.vllm_dtype)
        settings = {"agents": len(AGENTS), "samples_per_agent": samples, "rounds": rounds}
        settings.update(max_new_tokens=new_tokens, vllm_dtype=args.vllm_dtype, hf_dtype="float32")
        print(json.dumps({**figures, **settings}))
        return
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe, new_tokens)))
        return
    rounds, samples = (2, 4) if args.quick else (5, 4)
    # The probes first: a child's peak RSS starts at its parent's (Linux keeps ru_maxrss across
    # fork and exec), and throughput() makes this process large.
    lora = _probe_in_subprocess("lora", new_tokens)
    separate = _probe_in_subprocess("separate", new_tokens)
    rates = throughput(rounds, new_tokens, samples)
    result = {
        "batched_tok_s": round(rates["batched"], 1),
        "sequential_tok_s": round(rates["sequential"], 1),
        "speedup": round(rates["batched"] / rates["sequential"], 2),
        "fused_tok_s": round(rates["fused_float32"], 1),
        "fused_bf16_tok_s": round(rates["fused_bfloat16"], 1),
        "fused_speedup": round(rates["fused_float32"] / rates["batched"], 2),
        "fused_bf16_speedup": round(rates["fused_bfloat16"] / rates["batched"], 2),
        "team_lora_peak_mb": round(lora["peak_mb"], 1),
        "two_models_peak_mb": round(separate["peak_mb"], 1),
        "memory_ratio": round(lora["peak_mb"] / separate["peak_mb"], 3),
        "team_lora_process_peak_mb": round(lora["process_peak_mb"], 1),
        "two_models_process_peak_mb": round(separate["process_peak_mb"], 1),
        "agents": len(AGENTS),
        "samples_per_agent": samples,
        "max_new_tokens": new_tokens,
        "rounds": rounds,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
