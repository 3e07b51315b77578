"""A team that answers from a script instead of a model, for rollout tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from llm_marl.models import Completion, SamplingConfig, Team


class ScriptedTeam(Team):
    """``answer(agent, prompt, g)`` gives sample g's text; no model, no gradients."""

    def __init__(self, agents: Sequence[str], answer: Callable[[str, str, int], str]) -> None:
        super().__init__(agents, source="scripted")
        self.answer = answer
        self.calls: list[list[tuple[str, str]]] = []

    def generate(
        self, requests: Sequence[tuple[str, str]], config: SamplingConfig
    ) -> list[list[Completion]]:
        self.calls.append(list(requests))
        return [
            [
                _completion(agent, prompt, self.answer(agent, prompt, g))
                for g in range(config.num_samples)
            ]
            for agent, prompt in requests
        ]

    def _logprobs(
        self, completions: Any, temperatures: Any, batch_size: Any, *, reference: bool = False
    ) -> Any:
        raise NotImplementedError

    def trainable_parameters(self, agent: str) -> list[torch.nn.Parameter]:
        return []

    def tokenizer(self, agent: str) -> Any:
        return None

    def save_pretrained(self, path: Any) -> Any:
        raise NotImplementedError


def _completion(agent: str, prompt: str, text: str) -> Completion:
    ids = torch.arange(max(len(text), 1))
    return Completion(agent, prompt, text, torch.tensor([1]), ids, torch.zeros(len(ids)), "eos")
