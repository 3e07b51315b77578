"""Gymnasium spaces for text observations and text actions.

`gymnasium.spaces.Text` checks every character against a charset, and its default charset has
no space, while `string.printable` has no non-ASCII letters. LLM prompts and answers are
arbitrary Unicode, so :class:`UnicodeText` accepts any ``str`` within its length bounds and uses
its charset only to draw samples.
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np
from gymnasium import spaces

__all__ = ["SAMPLE_CHARSET", "UnicodeText", "text_observation_space"]

#: Characters drawn by ``sample()``: ASCII letters, digits, punctuation, spaces and newlines,
#: plus a few non-ASCII letters so that consumers meet Unicode from the first sample.
SAMPLE_CHARSET: str = (
    string.ascii_letters + string.digits + string.punctuation + "     \n" + "éüßçñøåæ—“”€"
)


class UnicodeText(spaces.Text):
    """A text space holding any Python ``str`` of ``min_length`` to ``max_length`` characters.

    ``contains()`` accepts every Unicode string within the length bounds; ``sample()`` draws
    strings from :data:`SAMPLE_CHARSET` (or the ``charset`` given).
    """

    def __init__(
        self,
        max_length: int,
        *,
        min_length: int = 0,
        charset: str = SAMPLE_CHARSET,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        if max_length < min_length or min_length < 0:
            raise ValueError(
                f"UnicodeText needs 0 <= min_length <= max_length, got min_length={min_length}, "
                f"max_length={max_length}"
            )
        super().__init__(max_length, min_length=min_length, charset=charset, seed=seed)

    def contains(self, x: Any) -> bool:
        """True for any ``str`` whose length lies within the bounds, whatever its characters."""
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"UnicodeText({self.min_length}, {self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, UnicodeText)
            and self.min_length == other.min_length
            and self.max_length == other.max_length
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.min_length, self.max_length))


def text_observation_space(max_length: int) -> spaces.Dict:
    """The observation space of every llm-marl env: ``{"text": prompt}``.

    A dict rather than a bare text space because PettingZoo's ``api_test`` inspects the dtype of
    non-dict observations, which a ``str`` does not have.
    """
    return spaces.Dict({"text": UnicodeText(max_length)})
