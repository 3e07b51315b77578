"""One training process of the data-parallel tests: ``torchrun ... dp_worker.py CONFIG_JSON``.

It registers the toy env, trains MAGRPO with the settings in the JSON argument and prints
``process <rank> of <world size>`` so the test can count the processes that really ran.
"""

from __future__ import annotations

import json
import sys

if __name__ == "__main__":
    from toy_env import parallel_env

    import llm_marl
    from llm_marl.baselines import MAGRPOConfig, MAGRPOTrainer

    llm_marl.register("digits_v0", parallel_env, override=True)
    trainer = MAGRPOTrainer(MAGRPOConfig(**json.loads(sys.argv[1])))
    trainer.train()
    # One write per line: the processes share the pipe, and an unbuffered print writes the
    # text and its newline separately, so two lines could interleave.
    sys.stdout.write(f"process {trainer.parallel.rank} of {trainer.parallel.world_size}\n")
    sys.stdout.flush()
