"""Joint actions scored per second by each writing env (reset + step, realistic answers).

Usage: ``python benchmarks/env_step.py [--quick]``. Prints one JSON object on its last line:
``{"tldr_v0_steps_per_s": ..., "arxiv_v0_steps_per_s": ..., "episodes": ...}``.
"""

from __future__ import annotations

import argparse
import json
import time

import llm_marl


def answers(env) -> dict[str, str]:
    """Answers of realistic size for the env's current task: its document, split in two."""
    words = env.task.document.split()
    half = len(words) // 2
    first, second = " ".join(words[:half]), " ".join(words[half:] * 2)
    return dict(zip(env.possible_agents, (first, second), strict=True))


def steps_per_second(env_id: str, episodes: int) -> float:
    """Reset-and-step cycles per second over ``episodes`` single-turn episodes."""
    env = llm_marl.make(env_id)
    env.reset(seed=0)
    start = time.perf_counter()
    for episode in range(episodes):
        env.reset(seed=episode)
        env.step(answers(env))
    return episodes / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer episodes")
    args = parser.parse_args()
    episodes = 200 if args.quick else 2000
    result = {f"{env_id}_steps_per_s": round(steps_per_second(env_id, episodes), 1)
              for env_id in ("tldr_v0", "arxiv_v0")}  # fmt: skip
    print(json.dumps({**result, "episodes": episodes}))


if __name__ == "__main__":
    main()
