"""UnicodeText and the observation space."""

from __future__ import annotations

import pytest

from llm_marl.spaces import UnicodeText, text_observation_space


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
