"""The gated writing reward of the MAGRPO paper (reward version ``v0``).

Two answers are scored jointly, level by level; a level that scores 0 stops the sum (levels after
it score 0). Maximum 3.0:

====  ==========================================  =====
L1    structure: both answers inside the word band  0.5
L2    length ratio len(a2) / len(a1), characters    1.0
L3    unique-word ratio uniq(a2) / uniq(a1)         0.5
L4    style: 0.4 * T + 0.6 * min(J, cap) / cap      1.0
====  ==========================================  =====

T (coherence) is 0 without a transition word, else ``0.4 + 0.05 * (categories - 1)`` capped at
1; J (consistency) is the Jaccard similarity of the answers' content words. Word counts split on
whitespace; characters are counted on the stripped answer. Reported groups: Structure
(L1 + L2 + L3), Coherence (0.4 * T) and Consistency (the J part); they sum to the total.

Individual shares (``reward_mode="individual"``): each agent keeps 0.25 for its own answer being
inside the word band, whatever its partner wrote; when both answers are inside the band, L2, L3
and the consistency part are split evenly (both answers set them), and the coherence part goes
to whoever it is measured on (answer 2 only, or half each when measured on both). The two shares
sum to the team reward whenever both answers are inside the band.

Teams of n writers (:func:`score_writing_team`): the two-answer reward is applied to each
consecutive pair (answer k, answer k + 1) and averaged over the n - 1 pairs: the team reward,
every term and each agent's share are the pair means (an agent's share is the sum of its shares
in the pairs it belongs to, divided by n - 1). For n = 2 this is exactly the two-answer reward.
The shares sum to the team reward whenever every answer is inside the word band.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from llm_marl.rewards.lexicon import jaccard, transition_categories, unique_words, whitespace_words

__all__ = [
    "ARXIV_V0",
    "TLDR_V0",
    "Ramp",
    "WritingRewardSpec",
    "WritingScore",
    "WritingTeamScore",
    "score_writing",
    "score_writing_team",
]

STRUCTURE_POINTS = 0.5
TRANSITION_WEIGHT = 0.4
JACCARD_WEIGHT = 0.6


@dataclass(frozen=True)
class Ramp:
    """A piecewise-linear score: linear between ``knots`` (x, y), holding the end values outside.

    ``Ramp(((1.1, 0), (1.6, 1), (3.2, 1), (5.0, 0)))`` is 1 on [1.6, 3.2], climbs from 0 at 1.1,
    falls to 0 at 5.0 and is 0 beyond both ends.
    """

    knots: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        xs = [x for x, _ in self.knots]
        if len(xs) < 2 or any(b <= a for a, b in itertools.pairwise(xs)):
            raise ValueError(f"Ramp knots need at least two strictly increasing x, got {xs}")

    def __call__(self, x: float) -> float:
        (x0, y0), (xn, yn) = self.knots[0], self.knots[-1]
        if x <= x0:
            return float(y0)
        if x >= xn:
            return float(yn)
        for (xa, ya), (xb, yb) in zip(self.knots, self.knots[1:], strict=False):
            if xa <= x <= xb:
                return float(ya + (yb - ya) * (x - xa) / (xb - xa))
        raise AssertionError("unreachable: x lies between the first and last knots")


@dataclass(frozen=True)
class WritingRewardSpec:
    """The task-specific constants of the gated writing reward."""

    name: str
    word_band: tuple[int, int]
    """Inclusive range of whitespace words that both answers need for level 1."""
    length_ratio: Ramp
    """Level 2 score of len(a2) / len(a1) in characters, at most 1.0."""
    unique_ratio: Ramp
    """Level 3 score of uniq(a2) / uniq(a1), at most 0.5."""
    jaccard_cap: float
    """Jaccard similarity at which the consistency part is full."""
    coherence_from: Literal["second", "both"]
    """Which answers are searched for transition words."""


TLDR_V0 = WritingRewardSpec(
    name="tldr_v0",
    word_band=(8, 256),
    length_ratio=Ramp(((1.1, 0.0), (1.6, 1.0), (3.2, 1.0), (5.0, 0.0))),
    unique_ratio=Ramp(((1.3, 0.0), (2.0, 0.5))),
    jaccard_cap=0.03,
    coherence_from="second",
)

ARXIV_V0 = WritingRewardSpec(
    name="arxiv_v0",
    word_band=(128, 256),
    length_ratio=Ramp(((0.8, 0.0), (1.3, 1.0), (1.6, 1.0), (2.0, 0.0))),
    unique_ratio=Ramp(((0.5, 0.0), (0.7, 0.5), (1.3, 0.5), (1.7, 0.0))),
    jaccard_cap=0.23,
    coherence_from="both",
)


@dataclass(frozen=True)
class WritingScore:
    """Every level, group and measurement of one scored pair of answers."""

    level1_structure: float
    level2_length_ratio: float
    level3_unique_ratio: float
    level4_style: float
    coherence: float
    """The transition part of level 4: 0.4 * T."""
    consistency: float
    """The Jaccard part of level 4: 0.6 * min(J, cap) / cap."""
    stopped_at: int
    """The level that scored 0 and stopped the sum, or 0 when every level scored."""
    words: tuple[int, int]
    length_ratio: float
    unique_ratio: float
    transition_categories: int
    jaccard: float
    individual: tuple[float, float]
    """Each agent's share (see the module docstring)."""

    @property
    def structure(self) -> float:
        """Structure group: L1 + L2 + L3."""
        return self.level1_structure + self.level2_length_ratio + self.level3_unique_ratio

    @property
    def total(self) -> float:
        """The team reward, 0 to 3."""
        return self.structure + self.level4_style

    def terms(self) -> dict[str, float]:
        """Reward terms by name, for ``infos``."""
        return {
            "level1_structure": self.level1_structure,
            "level2_length_ratio": self.level2_length_ratio,
            "level3_unique_ratio": self.level3_unique_ratio,
            "level4_style": self.level4_style,
            "structure": self.structure,
            "coherence": self.coherence,
            "consistency": self.consistency,
            "total": self.total,
        }

    def measures(self) -> dict[str, float | int]:
        """The raw measurements behind the terms, for ``infos``."""
        return {
            "words_0": self.words[0],
            "words_1": self.words[1],
            "length_ratio": self.length_ratio,
            "unique_ratio": self.unique_ratio,
            "transition_categories": self.transition_categories,
            "jaccard": self.jaccard,
            "stopped_at_level": self.stopped_at,
        }


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else 0.0


def coherence_score(categories: int) -> float:
    """T: 0 with no transition category, else 0.4 + 0.05 per extra category, capped at 1."""
    return 0.0 if categories == 0 else min(1.0, 0.4 + 0.05 * (categories - 1))


def score_writing(spec: WritingRewardSpec, answer_0: str, answer_1: str) -> WritingScore:
    """Score a pair of answers (agent 0's, agent 1's) with the gated writing reward ``spec``."""
    lo, hi = spec.word_band
    words = (whitespace_words(answer_0), whitespace_words(answer_1))
    in_band = tuple(lo <= n <= hi for n in words)
    length_ratio = _ratio(len(answer_1.strip()), len(answer_0.strip()))
    unique_ratio = _ratio(unique_words(answer_1), unique_words(answer_0))
    searched = (answer_1,) if spec.coherence_from == "second" else (answer_0, answer_1)
    categories = len(frozenset().union(*(transition_categories(a) for a in searched)))
    similarity = jaccard(answer_0, answer_1)

    levels = [0.0, 0.0, 0.0]
    coherence = consistency = 0.0
    stopped_at = 0
    candidates = (
        STRUCTURE_POINTS if all(in_band) else 0.0,
        spec.length_ratio(length_ratio),
        spec.unique_ratio(unique_ratio),
    )
    for level, value in enumerate(candidates):
        if value <= 0.0:
            stopped_at = level + 1
            break
        levels[level] = value
    if stopped_at == 0:
        coherence = TRANSITION_WEIGHT * coherence_score(categories)
        consistency = JACCARD_WEIGHT * min(similarity, spec.jaccard_cap) / spec.jaccard_cap

    shared = 0.5 * (levels[1] + levels[2] + consistency)
    coherence_1 = coherence if spec.coherence_from == "second" else 0.5 * coherence
    own = [STRUCTURE_POINTS / 2 if ok else 0.0 for ok in in_band]
    individual = (
        own[0] + (shared + coherence - coherence_1 if all(in_band) else 0.0),
        own[1] + (shared + coherence_1 if all(in_band) else 0.0),
    )
    return WritingScore(
        level1_structure=levels[0],
        level2_length_ratio=levels[1],
        level3_unique_ratio=levels[2],
        level4_style=coherence + consistency,
        coherence=coherence,
        consistency=consistency,
        stopped_at=stopped_at,
        words=words,
        length_ratio=length_ratio,
        unique_ratio=unique_ratio,
        transition_categories=categories,
        jaccard=similarity,
        individual=individual,
    )


@dataclass(frozen=True)
class WritingTeamScore:
    """The gated writing reward of n answers: the mean over consecutive pairs of answers."""

    pairs: tuple[WritingScore, ...]
    """The score of each pair (answer k, answer k + 1), k = 0 .. n - 2."""

    @property
    def total(self) -> float:
        """The team reward, 0 to 3: the mean of the pairs' totals."""
        return _mean(p.total for p in self.pairs)

    @property
    def stopped_at(self) -> int:
        """0 when every pair scored on every level, else the lowest level that stopped a pair."""
        return min((p.stopped_at for p in self.pairs if p.stopped_at), default=0)

    @property
    def individual(self) -> tuple[float, ...]:
        """Each agent's share: its shares in its (one or two) pairs, summed, over n - 1."""
        shares = [0.0] * (len(self.pairs) + 1)
        for k, pair in enumerate(self.pairs):
            shares[k] += pair.individual[0] / len(self.pairs)
            shares[k + 1] += pair.individual[1] / len(self.pairs)
        return tuple(shares)

    def terms(self) -> dict[str, float]:
        """Reward terms by name, each the mean over the pairs (as :meth:`WritingScore.terms`)."""
        per_pair = [p.terms() for p in self.pairs]
        return {name: _mean(t[name] for t in per_pair) for name in per_pair[0]}

    def measures(self) -> dict[str, float | int]:
        """Measurements for ``infos``: two answers give :meth:`WritingScore.measures` as it is.

        With more answers: ``words_k`` per answer, ``stopped_at_level`` (see :attr:`stopped_at`),
        and each pair's ratios, categories, Jaccard and stop level suffixed by the pair's index
        (``length_ratio_1`` is ``len(a2) / len(a1)``).
        """
        if len(self.pairs) == 1:
            return self.pairs[0].measures()
        measures: dict[str, float | int] = {"words_0": self.pairs[0].words[0]}
        for k, pair in enumerate(self.pairs):
            measures[f"words_{k + 1}"] = pair.words[1]
            for name, value in pair.measures().items():
                if not name.startswith("words_"):
                    measures[f"{name}_{k}"] = value
        measures["stopped_at_level"] = self.stopped_at
        return measures


def _mean(values: Iterable[float]) -> float:
    # fsum: exact for one value, so a two-answer team keeps the pair's floats bit for bit.
    items = list(values)
    return math.fsum(items) / len(items)


def score_writing_team(spec: WritingRewardSpec, answers: Sequence[str]) -> WritingTeamScore:
    """Score the answers of n >= 2 agents, in agent order, with the gated writing reward ``spec``.

    Each consecutive pair is scored by :func:`score_writing`; see the module docstring.
    """
    if isinstance(answers, str) or len(answers) < 2:
        raise ValueError(
            f"score_writing_team needs a sequence of at least two answers, got {answers!r}"
        )
    pairs = tuple(score_writing(spec, a, b) for a, b in itertools.pairwise(answers))
    return WritingTeamScore(pairs)
