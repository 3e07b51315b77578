"""Sampling settings and the completions a policy returns.

A :class:`Completion` keeps everything a trainer needs: the text for the environment, the
prompt and completion token ids to recompute log-probabilities under the current weights, and
the per-token log-probabilities of the policy that sampled it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from llm_marl.checks import check_int

__all__ = ["Completion", "FinishReason", "SamplingConfig"]

FinishReason = Literal["eos", "stop", "length"]


@dataclass(frozen=True)
class SamplingConfig:
    """How completions are sampled; the defaults follow the MAGRPO paper's runs."""

    num_samples: int = 4
    """Completions per prompt (the group size G)."""
    temperature: float = 0.8
    """Softmax temperature; 0 means greedy decoding (then every sample is the same)."""
    top_p: float = 1.0
    """Nucleus sampling mass; 1.0 keeps every token."""
    top_k: int = 0
    """Keep only the k most likely tokens; 0 turns it off."""
    max_new_tokens: int = 128
    """Longest completion in tokens."""
    stop: tuple[str, ...] = ()
    """Strings that end a completion (kept in the text); the tokenizer's EOS always does."""
    chat_template: bool = True
    """Wrap each prompt as one user message with the tokenizer's chat template, if it has one."""
    max_prompt_tokens: int | None = None
    """Refuse longer prompts (a clear error instead of a silent cut); None: no bound."""
    batch_size: int | None = None
    """Most sequences in one generate call; None: all requests in one call."""

    def __post_init__(self) -> None:
        check_int("num_samples", self.num_samples, 1)
        check_int("max_new_tokens", self.max_new_tokens, 1)
        if not self.temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature!r}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise ValueError(f"top_k must be an integer >= 0 (0 turns it off), got {self.top_k!r}")
        if isinstance(self.stop, str):
            raise TypeError(
                f"stop must be a tuple of strings, not one string: use ({self.stop!r},)"
            )
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ValueError(f"stop strings must be non-empty strings, got {self.stop!r}")
        object.__setattr__(self, "stop", tuple(self.stop))
        if self.max_prompt_tokens is not None:
            check_int("max_prompt_tokens", self.max_prompt_tokens, 1)
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size, 1)

    @property
    def greedy(self) -> bool:
        """True when decoding is greedy (temperature 0)."""
        return self.temperature == 0

    @property
    def logprob_temperature(self) -> float:
        """Temperature of the log-probabilities reported (1.0 for greedy decoding)."""
        return self.temperature if self.temperature > 0 else 1.0


@dataclass
class Completion:
    """One sampled completion of one agent's prompt."""

    agent: str
    """The agent whose policy sampled it."""
    prompt: str
    """The prompt as given (before any chat template)."""
    text: str
    """The completion's text, without the EOS token; a stop string is kept."""
    prompt_ids: Any
    """Token ids of the formatted prompt, a ``(P,)`` long tensor."""
    token_ids: Any
    """Token ids of the completion, a ``(T,)`` long tensor; it ends with EOS when one came.
    Completions keep their tensors on the CPU; recomputed log-probs come on the model's
    device."""
    logprobs: Any
    """Log-probability of each completion token under the sampling policy, ``(T,)`` float,
    at :attr:`SamplingConfig.logprob_temperature`, recorded while sampling (top-p/top-k
    truncation not applied, so it matches :meth:`~llm_marl.models.Team.logprobs`)."""
    finish_reason: FinishReason
    """``"eos"``, ``"stop"`` (a stop string) or ``"length"`` (hit ``max_new_tokens``)."""
    temperature: float = 1.0
    """Temperature of :attr:`logprobs`; :meth:`~llm_marl.models.Team.logprobs` uses it by
    default, so a trainer's first importance ratio is 1."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Room for trainers to attach their own bookkeeping."""

    @property
    def num_tokens(self) -> int:
        """Number of completion tokens."""
        return int(self.token_ids.shape[0])
