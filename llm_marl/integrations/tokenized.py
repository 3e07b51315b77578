"""Token-id observations (and optionally actions) for numeric-only libraries.

SuperSuit's vector envs, Tianshou and most RL code expect ``Box`` observations. These wrappers
turn each prompt into a fixed-size ``Box`` of token ids, with the tokenizer you give: any
callable ``str -> list[int]`` (with ``vocab_size``), or a Hugging Face tokenizer (its ``encode``;
its ``len()`` is the vocabulary). Prompts longer than ``max_tokens`` keep their last tokens (the
instructions close an llm-marl prompt) and are flagged; shorter ones are padded with ``pad_id``.
``infos[agent]["prompt_tokens"]`` gives every prompt's full token count, at reset and each step.

With ``max_action_tokens`` and a ``decode`` (``list[int] -> str``, or the HF tokenizer's own),
actions become ``Box`` es of token ids too, decoded to the answer text (``pad_id`` entries
dropped): a fully numeric env, which SuperSuit's multiprocess vector envs need (they keep
actions in shared memory)::

    import supersuit as ss
    from llm_marl.integrations.tokenized import TokenizedParallelEnv

    env = TokenizedParallelEnv(llm_marl.make("tldr_v0"), tokenizer, max_tokens=512)
    vec = ss.concat_vec_envs_v1(ss.pettingzoo_env_to_vec_env_v1(env), 4, base_class="gymnasium")

:class:`TokenizedParallelEnv` wraps a PettingZoo parallel env; :class:`TokenizedEnv` wraps a
Gymnasium env such as :class:`llm_marl.integrations.gymnasium.GymnasiumEnv`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray
from pettingzoo import ParallelEnv
from pettingzoo.utils.wrappers import BaseParallelWrapper

__all__ = ["TokenCodec", "TokenizedEnv", "TokenizedParallelEnv"]

Encode = Callable[[str], Sequence[int]]
Decode = Callable[[list[int]], str]


@dataclass(frozen=True)
class TokenCodec:
    """Prompt text <-> fixed-size token-id arrays, with the user's tokenizer."""

    encode: Encode
    vocab_size: int
    max_tokens: int
    pad_id: int = 0
    decode: Decode | None = None
    max_action_tokens: int | None = None

    @classmethod
    def build(
        cls,
        tokenizer: Any,
        *,
        max_tokens: int,
        vocab_size: int | None = None,
        pad_id: int = 0,
        decode: Decode | None = None,
        max_action_tokens: int | None = None,
    ) -> TokenCodec:
        """The codec of a callable ``str -> list[int]`` or of a Hugging Face tokenizer."""
        encode: Encode
        if hasattr(tokenizer, "encode") and hasattr(tokenizer, "decode"):  # Hugging Face
            encode, decode = tokenizer.encode, decode or tokenizer.decode
            vocab_size = len(tokenizer) if vocab_size is None else vocab_size
        elif callable(tokenizer):
            encode = tokenizer
        else:
            raise TypeError(
                f"tokenizer must be a callable str -> list[int] or a Hugging Face tokenizer, "
                f"got {type(tokenizer).__name__}"
            )
        if vocab_size is None:
            raise ValueError("vocab_size is needed with a plain callable tokenizer")
        for name, value in (("max_tokens", max_tokens), ("vocab_size", vocab_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if max_action_tokens is not None and decode is None:
            raise ValueError(
                "max_action_tokens needs decode (list[int] -> str) to turn token ids into text"
            )
        return cls(encode, vocab_size, max_tokens, pad_id, decode, max_action_tokens)

    def box(self, length: int) -> spaces.Box:
        """The space of ``length`` token ids (padding included)."""
        low, high = min(0, self.pad_id), max(self.vocab_size - 1, self.pad_id)
        return spaces.Box(low, high, shape=(length,), dtype=np.int64)

    def ids(self, text: str) -> tuple[NDArray[np.int64], int]:
        """The last ``max_tokens`` ids of ``text`` padded with ``pad_id``, and its full count."""
        tokens = [int(t) for t in self.encode(text)]
        bad = [t for t in tokens if not 0 <= t < self.vocab_size]
        if bad:
            raise ValueError(
                f"the tokenizer gave ids {bad[:5]} outside 0..{self.vocab_size - 1}: pass the "
                "vocab_size that covers them"
            )
        out = np.full(self.max_tokens, self.pad_id, dtype=np.int64)
        kept = tokens[-self.max_tokens :]
        out[: len(kept)] = kept
        return out, len(tokens)

    def text(self, action: Any) -> str:
        """The answer text of a token-id action (``pad_id`` entries dropped)."""
        assert self.decode is not None
        ids = [int(t) for t in np.asarray(action).reshape(-1) if int(t) != self.pad_id]
        return self.decode(ids)


class TokenizedParallelEnv(BaseParallelWrapper[Any, Any, Any]):
    """A PettingZoo parallel env whose text observations are ``Box`` es of token ids.

    Keyword arguments build the :class:`TokenCodec` (``max_tokens``, ``vocab_size``,
    ``pad_id``, ``decode``, ``max_action_tokens``).
    """

    def __init__(self, env: ParallelEnv, tokenizer: Any, **codec: Any) -> None:
        super().__init__(env)
        self.codec = TokenCodec.build(tokenizer, **codec)
        self.observation_spaces = {
            a: self.codec.box(self.codec.max_tokens) for a in env.possible_agents
        }
        numeric = self.codec.max_action_tokens
        self.action_spaces = {
            a: self.codec.box(numeric) if numeric else env.action_space(a)
            for a in env.possible_agents
        }

    def observation_space(self, agent: Any) -> spaces.Space[Any]:
        """The ``Box`` of ``max_tokens`` token ids."""
        return self.observation_spaces[agent]

    def action_space(self, agent: Any) -> spaces.Space[Any]:
        """The env's own action space, or a ``Box`` of token ids with ``max_action_tokens``."""
        return self.action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        """Reset the env; observations are token ids."""
        observations, infos = self.env.reset(seed=seed, options=options)
        return self._tokenized(observations, infos)

    def step(self, actions: dict[Any, Any]) -> Any:
        """Step the env (token-id actions decoded first); observations are token ids."""
        if self.codec.max_action_tokens:
            actions = {a: self.codec.text(ids) for a, ids in actions.items()}
        observations, rewards, terminations, truncations, infos = self.env.step(actions)
        observations, infos = self._tokenized(observations, infos)
        return observations, rewards, terminations, truncations, infos

    def _tokenized(self, observations: dict[Any, Any], infos: dict[Any, Any]) -> Any:
        out = {}
        for agent, observation in observations.items():
            out[agent], count = self.codec.ids(_prompt(observation))
            infos[agent] = {**infos.get(agent, {}), "prompt_tokens": count}
        return out, infos


class TokenizedEnv(gymnasium.Wrapper[Any, Any, Any, Any]):
    """A Gymnasium env (a text-observation one) with ``Box`` token-id observations."""

    def __init__(self, env: gymnasium.Env[Any, Any], tokenizer: Any, **codec: Any) -> None:
        super().__init__(env)
        self.codec = TokenCodec.build(tokenizer, **codec)
        self.observation_space = self.codec.box(self.codec.max_tokens)
        if self.codec.max_action_tokens:
            self.action_space = self.codec.box(self.codec.max_action_tokens)

    def reset(self, **kwargs: Any) -> tuple[NDArray[np.int64], dict[str, Any]]:
        """Reset the env; the observation is token ids."""
        observation, info = self.env.reset(**kwargs)
        ids, count = self.codec.ids(_prompt(observation))
        return ids, {**info, "prompt_tokens": count}

    def step(self, action: Any) -> tuple[NDArray[np.int64], Any, bool, bool, dict[str, Any]]:
        """Step the env (a token-id action decoded first); the observation is token ids."""
        if self.codec.max_action_tokens:
            action = self.codec.text(action)
        observation, reward, terminated, truncated, info = self.env.step(action)
        ids, count = self.codec.ids(_prompt(observation))
        return ids, reward, terminated, truncated, {**info, "prompt_tokens": count}


def _prompt(observation: Any) -> str:
    """The prompt of a ``str`` or ``{"text": str}`` observation."""
    text = observation.get("text") if isinstance(observation, dict) else observation
    if not isinstance(text, str):
        raise TypeError(f"expected a str or {{'text': str}} observation, got {observation!r:.80}")
    return text
