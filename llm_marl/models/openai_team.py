"""A team whose agents sample from a served model through an OpenAI-compatible API.

``load_policy("openai:http://127.0.0.1:8000/v1", model="name")`` builds one: every agent's
answers come from that endpoint (``vllm serve``, llama.cpp's server, ``transformers serve``,
an API model), so ``llm-marl eval`` can score a served model on every env. It only samples:
the weights live in the server, so log-probs for a loss, trainable parameters and saving are
refused with an error that says so.

Requests use the chat endpoint when :attr:`SamplingConfig.chat_template` is set (the server
applies its own template) and the plain completions endpoint otherwise. ``n`` samples are asked
for in one request; servers that ignore ``n`` are asked again for the rest.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn

import torch

from llm_marl.models.sampling import Completion, FinishReason, SamplingConfig
from llm_marl.models.team import Team

__all__ = ["OPENAI_PREFIX", "OpenAITeam"]

#: The prefix of a policy name that points at an OpenAI-compatible server.
OPENAI_PREFIX = "openai:"
#: Environment variable read for the API key (local servers accept any key).
API_KEY_VAR = "OPENAI_API_KEY"


class OpenAITeam(Team):
    """Agents that all sample from one served model; evaluation only (no training)."""

    def __init__(
        self,
        base_url: str,
        agents: Sequence[str],
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        max_concurrency: int = 8,
    ) -> None:
        """Connect to ``base_url`` (ending in ``/v1``) and check that it answers.

        ``model`` is the served model's name (default: the first one the server lists);
        ``timeout_s`` bounds each request; failed requests are retried ``max_retries``
        times with exponential backoff; at most ``max_concurrency`` requests run at once.
        """
        import openai

        if not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"the server URL must start with http:// or https://, got {base_url!r}; "
                "for example 'openai:http://127.0.0.1:8000/v1'"
            )
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency!r}")
        super().__init__(agents, source=f"{OPENAI_PREFIX}{base_url}")
        self.base_url = base_url.rstrip("/")
        self.max_concurrency = max_concurrency
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key or os.environ.get(API_KEY_VAR) or "unused",
            timeout=timeout_s,
            max_retries=max_retries,
        )
        self.model = model if model is not None else self._first_model()

    # --------------------------------------------------------------- sampling
    def generate(
        self, requests: Sequence[tuple[str, str]], config: SamplingConfig
    ) -> list[list[Completion]]:
        """``config.num_samples`` completions per ``(agent, prompt)``, requests in parallel.

        Completions carry the text and finish reason; token ids are empty (the server's
        tokenizer is not ours) and log-probs are filled when the server returns them.
        """
        self._check_requests(requests)
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            return list(pool.map(lambda item: self._sample(item[0], item[1], config), requests))

    def _sample(self, agent: str, prompt: str, config: SamplingConfig) -> list[Completion]:
        out: list[Completion] = []
        while len(out) < config.num_samples:  # a server may ignore n and answer with one
            choices = self._call(prompt, config, config.num_samples - len(out))
            out += [self._completion(agent, prompt, c, config) for c in choices]
        return out[: config.num_samples]

    def _call(self, prompt: str, config: SamplingConfig, n: int) -> list[Any]:
        import openai

        common: dict[str, Any] = {
            "model": self.model,
            "max_tokens": config.max_new_tokens,
            "temperature": config.temperature,
            "top_p": config.top_p,
            "n": n,
        }
        if config.stop:
            common["stop"] = list(config.stop)
        if config.top_k:
            common["extra_body"] = {"top_k": config.top_k}  # vLLM and llama.cpp read it
        try:
            if config.chat_template:
                messages = [{"role": "user", "content": prompt}]
                chat = self._client.chat.completions.create(
                    messages=messages,  # type: ignore[arg-type]
                    logprobs=True,
                    **common,
                )
                return list(chat.choices)
            plain = self._client.completions.create(prompt=prompt, logprobs=1, **common)
            return list(plain.choices)
        except openai.APIConnectionError as error:
            raise self._down(error) from error
        except openai.APIStatusError as error:
            raise RuntimeError(
                f"the server at {self.base_url} refused a request for model {self.model!r}: "
                f"HTTP {error.status_code}: {_brief(error.message)}"
            ) from error

    def _completion(
        self, agent: str, prompt: str, choice: Any, config: SamplingConfig
    ) -> Completion:
        message = getattr(choice, "message", None)
        text = str((message.content if message is not None else choice.text) or "")
        stop_string = getattr(choice, "stop_reason", None)  # vLLM names the stop string
        finish: FinishReason = "length" if choice.finish_reason == "length" else "eos"
        if isinstance(stop_string, str) and stop_string in config.stop:
            text, finish = text + stop_string, "stop"  # our contract keeps the stop string
        return Completion(
            agent=agent,
            prompt=prompt,
            text=text,
            prompt_ids=torch.zeros(0, dtype=torch.long),
            token_ids=torch.zeros(0, dtype=torch.long),
            logprobs=_logprobs(choice),
            finish_reason=finish,
            temperature=config.logprob_temperature,
        )

    def _first_model(self) -> str:
        import openai

        try:
            names = [m.id for m in self._client.models.list()]
        except openai.APIConnectionError as error:
            raise self._down(error) from error
        if not names:
            raise RuntimeError(f"the server at {self.base_url} lists no models; pass model=")
        return str(names[0])

    def _down(self, error: Exception) -> ConnectionError:
        return ConnectionError(
            f"no OpenAI-compatible server answers at {self.base_url} ({_brief(str(error))}); "
            "start one (for example `python -m vllm.entrypoints.openai.api_server --model "
            "NAME --port 8000`) or fix the URL"
        )

    # --------------------------------------------------------------- training: refused
    def _logprobs(
        self,
        completions: Sequence[Completion],
        temperatures: list[float],
        batch_size: int | None,
        *,
        reference: bool = False,
    ) -> list[torch.Tensor]:
        """Refused (behind :meth:`logprobs` and :meth:`reference_logprobs`): the served
        weights cannot be differentiated from here."""
        self._refuse("reference log-probs" if reference else "log-probs for a loss")

    def trainable_parameters(self, agent: str) -> list[torch.nn.Parameter]:
        """Refused: the weights live in the server."""
        self._refuse("trainable parameters")

    def tokenizer(self, agent: str) -> Any:
        """Refused: the server tokenizes; this client sends and receives text."""
        self._refuse("a tokenizer")

    def save_pretrained(self, path: str | os.PathLike[str]) -> Path:
        """Refused: there are no local weights to save."""
        self._refuse("saving")

    def num_parameters(self, agent: str | None = None) -> int:
        """0: nothing here is trainable."""
        return 0

    def __repr__(self) -> str:
        return (
            f"OpenAITeam(url={self.base_url!r}, model={self.model!r}, agents={list(self.agents)})"
        )

    def _refuse(self, what: str) -> NoReturn:
        raise NotImplementedError(
            f"the served policy at {self.base_url} samples only and has no {what}: it is for "
            "evaluation; train a local model instead (load_policy('embedded') or a hub id)"
        )


def _logprobs(choice: Any) -> torch.Tensor:
    """The sampled tokens' log-probs of a chat or plain choice, or an empty tensor."""
    raw = getattr(choice, "logprobs", None)
    if raw is None:
        return torch.zeros(0)
    content = getattr(raw, "content", None)
    values = [t.logprob for t in content] if content is not None else (raw.token_logprobs or [])
    return torch.tensor([float(v) for v in values if v is not None], dtype=torch.float32)


def _brief(text: str, limit: int = 300) -> str:
    """One line of at most ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
