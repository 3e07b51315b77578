"""Generation backends: what samples a team's completions, apart from what trains it.

The trainers' losses always recompute log-probs with the team's own model
(:meth:`~llm_marl.models.Team.logprobs`); a backend only samples. :class:`HFBackend` (the
default) is the team's own ``generate`` (HF transformers); :class:`FusedBackend` is the same
team through the lean decode loop of :mod:`~llm_marl.models.decode` (Llama-family models,
optionally in bfloat16). ``VLLMBackend``
(:mod:`llm_marl.models.vllm_backend`, ``pip install 'llm-marl[vllm]'``) runs one vLLM engine
over the base model and serves every agent through its own LoRA adapter; after each optimiser
step :meth:`GenerationBackend.sync` hands it the new weights.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, NoReturn

import torch

from llm_marl.models.decode import FusedDecoding, resolve_dtype, unsupported_reason
from llm_marl.models.sampling import Completion, SamplingConfig
from llm_marl.models.team import LoRATeam, SeparateTeam, Team

__all__ = [
    "BACKENDS",
    "FusedBackend",
    "GenerationBackend",
    "HFBackend",
    "check_fusable",
    "logprob_mismatch",
    "make_backend",
]


class GenerationBackend(ABC):
    """Samples completions for a team's agents; the team itself stays the trained policy."""

    name: ClassVar[str]

    @property
    def exact_logprobs(self) -> bool:
        """True when the recorded log-probs are the trainer's own up to float rounding (the
        same weights, the same dtype); else a trainer needs its own log-probs as the ratios'
        old policy. Default: False."""
        return False

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

    @property
    def exact_logprobs(self) -> bool:
        """True: the team's own model samples."""
        return True

    def generate(
        self, team: Team, requests: Sequence[tuple[str, str]], config: SamplingConfig
    ) -> list[list[Completion]]:
        """:meth:`Team.generate`."""
        return team.generate(requests, config)


class FusedBackend(GenerationBackend):
    """The team's own weights through :func:`~llm_marl.models.decode.fused_generate`: a LoRA
    team or a team of separate models, of a Llama-family base. ``dtype``: ``float32`` (the
    trainer's log-probs up to rounding), ``bfloat16`` (fewer bytes per step, log-probs a
    little off) or ``auto`` (bfloat16 where the hardware has fast bfloat16 products)."""

    name = "fused"

    def __init__(self, team: Team, dtype: str = "float32") -> None:
        check_fusable(team)
        self.decoding = FusedDecoding(dtype)
        parameter = next(_models(team)[0].parameters())
        self.dtype = resolve_dtype(dtype, parameter.device)
        self.team_dtype = parameter.dtype

    @property
    def exact_logprobs(self) -> bool:
        """True when the sampler runs in the team's own dtype (float32 for a float32 team)."""
        return self.dtype == self.team_dtype

    def generate(
        self, team: Team, requests: Sequence[tuple[str, str]], config: SamplingConfig
    ) -> list[list[Completion]]:
        """:meth:`Team.generate` with ``fused``."""
        if not isinstance(team, LoRATeam | SeparateTeam):
            _refuse(team)
        return team.generate(requests, config, fused=self.decoding)


def check_fusable(team: Team) -> None:
    """Raise the error :class:`FusedBackend` would raise for ``team``: a team type it cannot
    drive (``TypeError``) or a model it cannot run (``ValueError``)."""
    for model in _models(team):
        reason = unsupported_reason(model)
        if reason is not None:
            raise ValueError(f"the fused backend cannot run {team.source!r}: {reason}; use hf")


def _models(team: Team) -> list[Any]:
    """The models that sample ``team``'s agents."""
    if isinstance(team, LoRATeam):
        return [team.model]
    if isinstance(team, SeparateTeam):
        return list(team.models.values())
    _refuse(team)


def _refuse(team: Team) -> NoReturn:
    raise TypeError(
        f"the fused backend samples a LoRA team or a team of separate models, got "
        f"{type(team).__name__}; use the hf backend"
    )


#: The backend names ``--generation-backend`` accepts.
BACKENDS = ("hf", "fused", "vllm")


def make_backend(name: str, team: Team, *, dtype: str = "float32") -> GenerationBackend:
    """The backend called ``name`` for ``team`` (one of :data:`BACKENDS`); ``dtype`` is the
    sampler's weights (fused and vllm; the hf backend samples with the team's own)."""
    if name == "hf":
        return HFBackend()
    if name == "fused":
        return FusedBackend(team, dtype)
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
