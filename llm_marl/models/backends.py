"""Generation backends: what samples a team's completions, apart from what trains it.

The trainers' losses always recompute log-probs with the team's own model
(:meth:`~llm_marl.models.Team.logprobs`); a backend only samples. :class:`HFBackend` (the
default) is the team's own ``generate`` (HF transformers). ``VLLMBackend``
(:mod:`llm_marl.models.vllm_backend`, ``pip install 'llm-marl[vllm]'``) runs one vLLM engine
over the base model and serves every agent through its own LoRA adapter; after each optimiser
step :meth:`GenerationBackend.sync` hands it the new weights.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import torch

from llm_marl.models.sampling import Completion, SamplingConfig
from llm_marl.models.team import Team

__all__ = ["BACKENDS", "GenerationBackend", "HFBackend", "logprob_mismatch", "make_backend"]


class GenerationBackend(ABC):
    """Samples completions for a team's agents; the team itself stays the trained policy."""

    name: ClassVar[str]

    @abstractmethod
    def generate(
        self, team: Team, requests: Sequence[tuple[str, str]], config: SamplingConfig
    ) -> list[list[Completion]]:
        """``config.num_samples`` completions per ``(agent, prompt)``, as
        :meth:`Team.generate`."""

    def sync(self, team: Team) -> None:
        """Make the next samples use ``team``'s current weights (after an optimiser step);
        default: nothing to do."""
        return None

    def close(self) -> None:
        """Free what the backend holds (an engine, say); default: nothing held."""
        return None


class HFBackend(GenerationBackend):
    """The team's own batched HF ``generate``: nothing to sync, the weights are the team's."""

    name = "hf"

    def generate(
        self, team: Team, requests: Sequence[tuple[str, str]], config: SamplingConfig
    ) -> list[list[Completion]]:
        """:meth:`Team.generate`."""
        return team.generate(requests, config)


#: The backend names ``--generation-backend`` accepts.
BACKENDS = ("hf", "vllm")


def make_backend(name: str, team: Team, *, dtype: str = "float32") -> GenerationBackend:
    """The backend called ``name`` for ``team`` (``"hf"`` or ``"vllm"``); ``dtype`` is the
    vLLM engine's (the hf backend samples with the team's own weights)."""
    if name == "hf":
        return HFBackend()
    if name == "vllm":
        from llm_marl.models.vllm_backend import VLLMBackend

        return VLLMBackend(team, dtype=dtype)
    raise ValueError(f"unknown generation backend {name!r}; choose one of {list(BACKENDS)}")


def logprob_mismatch(
    sampled: Sequence[torch.Tensor], recomputed: Sequence[torch.Tensor]
) -> dict[str, float]:
    """Mean and max absolute difference between the sampler's and the trainer's log-probs."""
    diffs = torch.cat(
        [torch.zeros(0)]
        + [
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
