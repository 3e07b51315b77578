"""UnicodeText and the observation space."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.error import CustomSpaceError
from gymnasium.vector.utils import (
    batch_differing_spaces,
    batch_space,
    concatenate,
    create_empty_array,
    create_shared_memory,
    iterate,
)

from llm_marl.spaces import SAMPLE_CHARSET, UnicodeText, UnicodeTextBatch, text_observation_space


def test_contains_any_unicode_string_within_bounds() -> None:
    """Any str up to max_length is inside, whatever its characters; other types are not."""
    space = UnicodeText(20)
    assert space.contains("naïve café — 😀 ok")
    assert space.contains("")
    assert not space.contains("x" * 21)
    assert not space.contains(b"bytes")
    assert not space.contains(12)


def test_min_length_is_enforced() -> None:
    """Strings shorter than min_length are outside."""
    space = UnicodeText(10, min_length=2)
    assert not space.contains("a") and space.contains("ab")


def test_samples_are_inside_and_seeded() -> None:
    """sample() returns strings inside the space, reproducibly under a seed."""
    first, second = UnicodeText(300, seed=3), UnicodeText(300, seed=3)
    samples = [first.sample() for _ in range(20)]
    assert samples == [second.sample() for _ in range(20)]
    assert all(first.contains(s) for s in samples)
    assert any(" " in s for s in samples) and any(not s.isascii() for s in samples)


def test_bad_bounds_are_rejected() -> None:
    """A max_length below min_length is a clear error."""
    with pytest.raises(ValueError, match="min_length=5, max_length=3"):
        UnicodeText(3, min_length=5)


def test_observation_space_is_a_text_dict() -> None:
    """Observations are {'text': prompt}."""
    space = text_observation_space(50)
    assert space.contains({"text": "héllo"})
    assert not space.contains({"text": "x" * 51})
    assert not space.contains("héllo")


def test_sample_charset_holds_each_character_once() -> None:
    """Gymnasium 1.1 to 1.3 cannot sample from a charset with repeats ('a and p must have same
    size'): the default has none, and a charset with repeats is refused up front."""
    assert len(set(SAMPLE_CHARSET)) == len(SAMPLE_CHARSET)
    assert " " in SAMPLE_CHARSET and "\n" in SAMPLE_CHARSET
    with pytest.raises(ValueError, match=r"each character once.*repeats \[' ', 'a'\]"):
        UnicodeText(10, charset="ab  ca")


def test_batch_iterate_and_concatenate_walk_strings() -> None:
    """Batches of text are tuples of strings that iterate() walks with the single or batched
    space (SuperSuit uses the single one), also inside a Dict or next to other spaces."""
    single = text_observation_space(30)
    batched = batch_space(single, 3)
    assert isinstance(batched["text"], UnicodeTextBatch) and len(batched["text"]) == 3
    texts = ["naïve", "日本語 ok", ""]
    joined = concatenate(single, [{"text": t} for t in texts], create_empty_array(single, 3))
    assert joined == {"text": tuple(texts)} and batched.contains(joined)
    assert list(iterate(batched, joined)) == [{"text": t} for t in texts]
    assert list(iterate(single, joined)) == [{"text": t} for t in texts]
    mixed = batch_space(spaces.Tuple((UnicodeText(9), spaces.Discrete(4))), 2)
    assert list(iterate(mixed, (("a€", "b"), np.array([1, 3])))) == [("a€", 1), ("b", 3)]
    with pytest.raises(TypeError, match="needs a batch of strings"):
        iterate(UnicodeText(9), "abc")


def test_batched_samples_are_seeded_and_independent() -> None:
    """A batch samples one string per env, reproducibly from the single space's seed."""
    first, second = batch_space(UnicodeText(40, seed=5), 3), batch_space(UnicodeText(40, seed=5), 3)
    samples = first.sample()
    assert samples == second.sample() and len(set(samples)) == 3 and first.contains(samples)
    assert isinstance(batch_differing_spaces([UnicodeText(5), UnicodeText(7)]), UnicodeTextBatch)


UNICODE = "naïve café — 😀 \x00 \ud800 日本語 \n end"


def test_flatten_round_trips_any_unicode() -> None:
    """Flattening stores code points, so characters outside the sample charset survive."""
    space = text_observation_space(64)
    flat_space = spaces.flatten_space(space)
    flat = spaces.flatten(space, {"text": UNICODE})
    assert flat.shape == (64,) == (spaces.flatdim(space),) and flat_space.contains(flat)
    assert spaces.unflatten(space, flat) == {"text": UNICODE}
    assert spaces.unflatten(space, spaces.flatten(space, {"text": ""})) == {"text": ""}
    with pytest.raises(ValueError, match="cannot flatten"):
        spaces.flatten(UnicodeText(3), "four")


def test_shared_memory_is_refused_with_what_to_do() -> None:
    """AsyncVectorEnv reads shared memory once as a live view, which a str cannot be: the error
    says to pass shared_memory=False (gymnasium's own Text reads stale text or a KeyError)."""
    with pytest.raises(CustomSpaceError, match=r"shared_memory=False"):
        create_shared_memory(text_observation_space(64), n=2)
