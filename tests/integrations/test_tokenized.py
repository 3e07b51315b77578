"""Token-id observations and actions, run through SuperSuit's real vector envs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import supersuit as ss
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

import llm_marl
from llm_marl.integrations.gymnasium import GymnasiumEnv
from llm_marl.integrations.tokenized import TokenizedEnv, TokenizedParallelEnv


def utf8_ids(text: str) -> list[int]:
    """A byte-level tokenizer (ids 1..256, 0 is padding)."""
    return [b + 1 for b in text.encode()]


def utf8_text(ids: list[int]) -> str:
    return bytes(i - 1 for i in ids).decode(errors="replace")


BYTES = {"vocab_size": 257, "max_tokens": 4096}
ANSWER = "A short plain answer of some words, with naïve Unicode."


def test_supersuit_vector_envs_step_on_token_observations() -> None:
    """pettingzoo_env_to_vec_env_v1 and concat_vec_envs_v1 give Box observations; a prompt
    decodes back from its ids; text actions still step."""
    env = TokenizedParallelEnv(llm_marl.make("tldr_v0", num_turns=2), utf8_ids, **BYTES)
    vec = ss.concat_vec_envs_v1(ss.pettingzoo_env_to_vec_env_v1(env), 2, base_class="gymnasium")
    observations, infos = vec.reset(seed=0)
    assert observations.shape == (4, 4096) and observations.dtype == np.int64
    prompt = llm_marl.make("tldr_v0").reset(seed=0)[0]["concise_0"]["text"]
    assert utf8_text([i for i in observations[0] if i]) == prompt
    assert infos[0]["prompt_tokens"] == len(prompt.encode())
    observations, rewards, terminations, truncations, infos = vec.step([ANSWER] * 4)
    assert observations.shape == (4, 4096) and rewards.shape == (4,)
    assert not terminations.any() and not truncations.any()
    assert {"prompt_tokens", "team_reward"} <= set(infos[0])
    *_, terminations, truncations, _ = vec.step([ANSWER] * 4)
    assert terminations.all() and not truncations.any()
    vec.close()


def test_numeric_actions_in_supersuit_multiprocess_vector_envs() -> None:
    """With max_action_tokens and decode the env is numeric end to end, which SuperSuit's
    multiprocess vector envs need (shared memory for observations and actions)."""
    env = TokenizedParallelEnv(
        llm_marl.make("tldr_v0"), utf8_ids, decode=utf8_text, max_action_tokens=64, **BYTES
    )
    assert env.action_space("concise_0") == spaces.Box(0, 256, (64,), np.int64)
    vec = ss.concat_vec_envs_v1(
        ss.pettingzoo_env_to_vec_env_v1(env), 2, num_cpus=2, base_class="gymnasium"
    )
    try:
        observations, _ = vec.reset(seed=0)
        assert observations.shape == (4, 4096)
        action = np.zeros(64, dtype=np.int64)
        action[: len(utf8_ids("short words"))] = utf8_ids("short words")
        observations, rewards, terminations, *_ = vec.step(np.stack([action] * 4))
        assert observations.shape == (4, 4096) and terminations.all()
        reference = llm_marl.make("tldr_v0")
        reference.reset(seed=0)
        expected = reference.step(dict.fromkeys(reference.agents, "short words"))[1]
        assert rewards[0] == pytest.approx(expected["concise_0"])
    finally:
        vec.close()


def test_long_prompts_keep_their_last_tokens_and_keys_stay_fixed() -> None:
    """A prompt over max_tokens keeps its end (the instructions); infos keep one key set."""
    env = TokenizedParallelEnv(llm_marl.make("tldr_v0"), utf8_ids, vocab_size=257, max_tokens=50)
    observations, infos = env.reset(seed=0)
    prompt = llm_marl.make("tldr_v0").reset(seed=0)[0]["concise_0"]["text"]
    assert utf8_text(list(observations["concise_0"])) == prompt.encode()[-50:].decode()
    assert infos["concise_0"]["prompt_tokens"] == len(prompt.encode()) > 50
    *_, step_infos = env.step(dict.fromkeys(env.agents, ANSWER))
    assert set(step_infos["concise_0"]) == set(infos["concise_0"])


def test_hugging_face_tokenizer_and_gymnasium_view() -> None:
    """A HF tokenizer brings its vocabulary and decode; the Gymnasium wrapper passes the
    env checker with numeric observations and actions."""
    from llm_marl.models.tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    env = TokenizedEnv(
        GymnasiumEnv("tldr_v0", num_turns=2), tokenizer, max_tokens=2048, max_action_tokens=32
    )
    assert env.observation_space == spaces.Box(0, len(tokenizer) - 1, (2048,), np.int64)
    check_env(env)
    ids, info = env.reset(seed=1)
    expected = tokenizer.encode(GymnasiumEnv("tldr_v0").reset(seed=1)[0])
    assert list(ids[: len(expected)]) == expected and info["prompt_tokens"] == len(expected)
    action = np.array(tokenizer.encode("[PART 1]\nabc\n[PART 2]\ndef")[:32], dtype=np.int64)
    _, _, terminated, _, info = env.step(np.pad(action, (0, 32 - len(action))))
    assert not terminated and info["measures"]["words_0"] == 1


def test_bad_tokenizers_say_what_to_pass() -> None:
    """Ids outside the vocabulary, a callable without vocab_size, actions without decode."""
    env = llm_marl.make("tldr_v0")
    with pytest.raises(ValueError, match="vocab_size is needed"):
        TokenizedParallelEnv(env, utf8_ids, max_tokens=8)
    with pytest.raises(ValueError, match="needs decode"):
        TokenizedParallelEnv(env, utf8_ids, max_action_tokens=8, **BYTES)
    with pytest.raises(ValueError, match=r"outside 0\.\.99"):
        TokenizedParallelEnv(env, utf8_ids, vocab_size=100, max_tokens=8).reset(seed=0)


DOC = Path(__file__).resolve().parents[2] / "docs" / "env_conventions.md"


def test_the_env_conventions_page_snippets_run() -> None:
    """Every python block of docs/env_conventions.md runs as written."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert len(blocks) == 2
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {"__name__": "docs"})
