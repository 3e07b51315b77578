"""Gymnasium spaces for text observations and text actions.

`gymnasium.spaces.Text` checks every character against a charset, and its default charset has
no space, while `string.printable` has no non-ASCII letters. LLM prompts and answers are
arbitrary Unicode, so :class:`UnicodeText` accepts any ``str`` within its length bounds and uses
its charset only to draw samples.

Importing this module also registers :class:`UnicodeText` with Gymnasium's space utilities, so
that vector envs (Gymnasium's, SuperSuit's) and flattening work on any Unicode text:

- ``batch_space``/``batch_differing_spaces`` give a :class:`UnicodeTextBatch` (a ``Tuple`` of
  text spaces) and ``iterate`` walks a batch of strings (a tuple or list, as ``concatenate``
  gives); ``concatenate`` and ``create_empty_array`` are Gymnasium's own for ``Text``.
- ``flatten``/``unflatten``/``flatten_space`` store Unicode code points (``int32``, ``-1`` after
  the end of the text) instead of indexes into the charset, so every ``str`` round-trips.
- Shared memory is refused with an error that says to pass ``shared_memory=False``: Gymnasium's
  ``AsyncVectorEnv`` and SuperSuit's multiprocess vector envs read it once, as a live view, which
  an (immutable) ``str`` cannot be. Text observations then travel through pipes; numeric-only
  consumers tokenise them (:mod:`llm_marl.integrations.tokenized`).
"""

from __future__ import annotations

import copy
import string
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.error import CustomSpaceError
from gymnasium.vector.utils import (
    batch_differing_spaces,
    batch_space,
    create_shared_memory,
    iterate,
)
from numpy.typing import NDArray

__all__ = [
    "MAX_CODE_POINT",
    "PAD_CODE",
    "SAMPLE_CHARSET",
    "UnicodeText",
    "UnicodeTextBatch",
    "text_observation_space",
]

#: Characters drawn by ``sample()``, each once (Gymnasium 1.1 to 1.3 fail to sample from a
#: charset with repeats): ASCII letters, digits, punctuation, a space and a newline, plus a few
#: non-ASCII letters so that consumers meet Unicode from the first sample.
SAMPLE_CHARSET: str = (
    string.ascii_letters + string.digits + string.punctuation + " \n" + "éüßçñøåæ—“”€"
)
#: The largest Unicode code point: the upper bound of a flattened text.
MAX_CODE_POINT: int = 0x10FFFF
#: The value after the end of a text in its flattened form.
PAD_CODE: int = -1


class UnicodeText(spaces.Text):
    """A text space holding any Python ``str`` of ``min_length`` to ``max_length`` characters.

    ``contains()`` accepts every Unicode string within the length bounds; ``sample()`` draws
    strings from :data:`SAMPLE_CHARSET` (or the ``charset`` given, each character once).
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
        repeated = sorted({c for c in charset if charset.count(c) > 1})
        if not charset or repeated:
            raise ValueError(
                f"UnicodeText's sample charset must hold each character once (Gymnasium 1.1 "
                f"and later cannot sample otherwise); got repeats {repeated} in {charset!r}"
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


class UnicodeTextBatch(spaces.Tuple):
    """The batch of ``n`` :class:`UnicodeText` spaces of a vector env: a tuple of strings."""


def text_observation_space(max_length: int) -> spaces.Dict:
    """The observation space of every llm-marl env: ``{"text": prompt}``.

    A dict rather than a bare text space because PettingZoo's ``api_test`` inspects the dtype of
    non-dict observations, which a ``str`` does not have.
    """
    return spaces.Dict({"text": UnicodeText(max_length)})


# ----------------------------------------------------------------- vector env support
@batch_space.register(UnicodeText)
def _batch_text(space: UnicodeText, n: int = 1) -> UnicodeTextBatch:
    # As Gymnasium batches its Text: independent copies, seeded from the space's generator.
    batched = UnicodeTextBatch(
        tuple(copy.deepcopy(space) for _ in range(n)), seed=copy.deepcopy(space.np_random)
    )
    seeds = copy.deepcopy(space.np_random).integers(0, 10**8, n)
    batched.seed([int(s) for s in seeds])
    return batched


@batch_differing_spaces.register(UnicodeText)
def _batch_differing_texts(texts: Sequence[UnicodeText]) -> UnicodeTextBatch:  # type: ignore[misc]
    return UnicodeTextBatch(
        [copy.deepcopy(s) for s in texts], seed=copy.deepcopy(texts[0].np_random)
    )


@iterate.register(UnicodeText)
@iterate.register(UnicodeTextBatch)
def _iterate_texts(space: spaces.Space[Any], items: Sequence[str]) -> Iterator[str]:  # type: ignore[misc]
    # SuperSuit iterates a batch with the single-env space, Gymnasium with the batched one.
    if isinstance(items, str):
        raise TypeError(
            f"iterate({space}, ...) needs a batch of strings (a tuple or list, one per env), "
            f"got a single str {items[:40]!r}: wrap it as ({items[:20]!r},)"
        )
    return iter(items)


# ----------------------------------------------------------------- flattening
@spaces.flatten.register(UnicodeText)
def _flatten_text(space: UnicodeText, x: str) -> NDArray[np.int32]:  # type: ignore[misc]
    if not space.contains(x):
        raise ValueError(f"cannot flatten {x!r:.60} into {space}: not a str within its bounds")
    codes = np.full(space.max_length, PAD_CODE, dtype=np.int32)
    codes[: len(x)] = np.frombuffer(x.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    return codes


@spaces.unflatten.register(UnicodeText)
def _unflatten_text(space: UnicodeText, x: NDArray[np.integer[Any]]) -> str:  # type: ignore[misc]
    codes = np.asarray(x)
    return "".join(map(chr, codes[codes != PAD_CODE].tolist()))


@spaces.flatten_space.register(UnicodeText)
def _flatten_text_space(space: UnicodeText) -> spaces.Box:
    return spaces.Box(PAD_CODE, MAX_CODE_POINT, shape=(space.max_length,), dtype=np.int32)


@create_shared_memory.register(UnicodeText)
def _refuse_shared_memory(space: UnicodeText, n: int = 1, ctx: Any = None) -> Any:  # type: ignore[misc]
    raise CustomSpaceError(
        f"{space} cannot live in shared memory: vector envs read it once as a live view, which a "
        "str cannot be. Pass shared_memory=False (AsyncVectorEnv(..., shared_memory=False)), "
        "or tokenise the prompts into a Box (llm_marl.integrations.tokenized)"
    )
