"""The gated writing reward v0 (score_writing) against its specification, with hand-worked values.

Texts are built from synthetic 4-letter words ("qxaa", "qxab", ...) that are neither stopwords
nor transition words, so every count in a case is known by construction:

- ``filler(prefix, n_words, n_unique)`` gives ``n_unique`` distinct words of one prefix, then
  repeats the first one until there are ``n_words``; each word is 4 characters.
- ``answer(*parts, chars=N)`` joins the parts with single spaces, then widens the last gap so
  the stripped answer is exactly N characters long. Extra inner spaces change neither the
  whitespace word count nor the ``\\w+`` words, so length is set independently of the words.

Different prefixes never share a word, so their Jaccard overlap is 0 unless a case adds shared
"sx" words on both sides.
"""

from __future__ import annotations

import re
from string import ascii_lowercase

import pytest

from llm_marl.rewards.lexicon import STOPWORDS, TRANSITIONS
from llm_marl.rewards.writing import (
    ARXIV_V0,
    TLDR_V0,
    WritingRewardSpec,
    score_writing,
    score_writing_team,
)

SPECS = [pytest.param(TLDR_V0, id="tldr"), pytest.param(ARXIV_V0, id="arxiv")]

TERM_KEYS = {
    "level1_structure",
    "level2_length_ratio",
    "level3_unique_ratio",
    "level4_style",
    "structure",
    "coherence",
    "consistency",
    "total",
}


# --------------------------------------------------------------------------- text builders


def vocab(prefix: str, n: int) -> list[str]:
    """``n`` distinct 4-letter words: a 2-letter prefix and two letters (676 at most)."""
    words = [prefix + a + b for a in ascii_lowercase for b in ascii_lowercase]
    assert n <= len(words)
    return words[:n]


def filler(prefix: str, n_words: int, n_unique: int | None = None) -> list[str]:
    """``n_words`` tokens with ``n_unique`` distinct words (default: all distinct)."""
    distinct = vocab(prefix, n_words if n_unique is None else n_unique)
    return distinct + [distinct[0]] * (n_words - len(distinct))


def answer(*parts: str | list[str], chars: int | None = None) -> str:
    """Join the parts with spaces; pad the last gap so the text has exactly ``chars`` chars."""
    tokens = [t for part in parts for t in ([part] if isinstance(part, str) else part) if t]
    text = " ".join(tokens)
    if chars is not None:
        extra = chars - len(text)
        assert extra >= 0, f"cannot fit {len(text)} characters into {chars}"
        head, tail = text.rsplit(" ", 1)
        text = head + " " * (1 + extra) + tail
        assert len(text) == chars
    return text


def test_builders_give_the_counts_the_cases_rely_on() -> None:
    """The helpers give exact word counts, distinct words and lengths, and no lexicon words."""
    text = answer(filler("qx", 128, 100), chars=1000)
    assert len(text.strip()) == 1000
    assert len(text.split()) == 128
    assert len(set(re.findall(r"\w+", text.lower()))) == 100
    assert not set(vocab("qx", 676) + vocab("vx", 676) + vocab("sx", 676)) & STOPWORDS
    phrases = {p for ps in TRANSITIONS.values() for p in ps}
    assert not set(vocab("qx", 676) + vocab("vx", 676) + vocab("sx", 676)) & phrases
    assert answer(["ab", "cd"], "ef", chars=10) == "ab cd   ef"


# --------------------------------------------------------------------------- L1: word band


@pytest.mark.parametrize(
    ("spec", "n_words", "in_band"),
    [
        pytest.param(TLDR_V0, 7, False, id="tldr-7"),
        pytest.param(TLDR_V0, 8, True, id="tldr-8"),
        pytest.param(TLDR_V0, 256, True, id="tldr-256"),
        pytest.param(TLDR_V0, 257, False, id="tldr-257"),
        pytest.param(ARXIV_V0, 127, False, id="arxiv-127"),
        pytest.param(ARXIV_V0, 128, True, id="arxiv-128"),
        pytest.param(ARXIV_V0, 256, True, id="arxiv-256"),
        pytest.param(ARXIV_V0, 257, False, id="arxiv-257"),
    ],
)
@pytest.mark.parametrize("varied", [0, 1], ids=["a1-varied", "a2-varied"])
def test_level1_word_band_edges(
    spec: WritingRewardSpec, n_words: int, in_band: bool, varied: int
) -> None:
    """L1 is 0.5 for word counts lo..hi inclusive; lo-1 or hi+1 in either answer stops at 1."""
    # The other answer has lo words (TLDR 8, arXiv 128), inside the band.
    tested = answer(filler("qx", n_words, min(n_words, 50)))
    other = answer(filler("vx", spec.word_band[0]))
    a1, a2 = (tested, other) if varied == 0 else (other, tested)
    score = score_writing(spec, a1, a2)
    assert score.words[varied] == n_words
    if in_band:
        assert score.level1_structure == pytest.approx(0.5)
        assert score.stopped_at != 1
    else:
        assert score.level1_structure == 0.0
        assert score.stopped_at == 1
        assert score.level2_length_ratio == score.level3_unique_ratio == 0.0
        assert score.level4_style == 0.0
        assert score.total == 0.0


# --------------------------------------------------------------------------- L2: length ratio


def _tldr_length_pair(a2_chars: int) -> tuple[str, str]:
    # a1: 10 distinct words, 100 characters; a2: 20 distinct words (uniq ratio 2.0 -> L3 0.5).
    return answer(filler("qx", 10), chars=100), answer(filler("vx", 20), chars=a2_chars)


def _arxiv_length_pair(a2_chars: int) -> tuple[str, str]:
    # a1, a2: 128 words, 100 distinct each (uniq ratio 1.0 -> L3 0.5); a1 is 1000 characters.
    return (
        answer(filler("qx", 128, 100), chars=1000),
        answer(filler("vx", 128, 100), chars=a2_chars),
    )


@pytest.mark.parametrize(
    ("spec", "a2_chars", "expected"),
    [
        # TLDR, a1 = 100 chars, ratio = a2_chars / 100; knots 1.1 (0), 1.6 (1), 3.2 (1), 5.0 (0).
        pytest.param(TLDR_V0, 100, 0.0, id="tldr-1.0-below"),
        pytest.param(TLDR_V0, 110, 0.0, id="tldr-1.1-knot"),
        pytest.param(TLDR_V0, 120, 0.2, id="tldr-1.2"),  # (1.2-1.1)/0.5
        pytest.param(TLDR_V0, 135, 0.5, id="tldr-1.35-mid"),  # (1.35-1.1)/0.5
        pytest.param(TLDR_V0, 160, 1.0, id="tldr-1.6-knot"),
        pytest.param(TLDR_V0, 240, 1.0, id="tldr-2.4-flat"),
        pytest.param(TLDR_V0, 320, 1.0, id="tldr-3.2-knot"),
        pytest.param(TLDR_V0, 410, 0.5, id="tldr-4.1-mid"),  # 1 - (4.1-3.2)/1.8
        pytest.param(TLDR_V0, 455, 0.25, id="tldr-4.55"),  # 1 - (4.55-3.2)/1.8
        pytest.param(TLDR_V0, 500, 0.0, id="tldr-5.0-knot"),
        pytest.param(TLDR_V0, 550, 0.0, id="tldr-5.5-above"),
        # arXiv, a1 = 1000 chars; knots 0.8 (0), 1.3 (1), 1.6 (1), 2.0 (0).
        pytest.param(ARXIV_V0, 700, 0.0, id="arxiv-0.7-below"),
        pytest.param(ARXIV_V0, 800, 0.0, id="arxiv-0.8-knot"),
        pytest.param(ARXIV_V0, 900, 0.2, id="arxiv-0.9"),  # (0.9-0.8)/0.5
        pytest.param(ARXIV_V0, 1050, 0.5, id="arxiv-1.05-mid"),  # (1.05-0.8)/0.5
        pytest.param(ARXIV_V0, 1300, 1.0, id="arxiv-1.3-knot"),
        pytest.param(ARXIV_V0, 1450, 1.0, id="arxiv-1.45-flat"),
        pytest.param(ARXIV_V0, 1600, 1.0, id="arxiv-1.6-knot"),
        pytest.param(ARXIV_V0, 1800, 0.5, id="arxiv-1.8-mid"),  # 1 - (1.8-1.6)/0.4
        pytest.param(ARXIV_V0, 1900, 0.25, id="arxiv-1.9"),  # 1 - (1.9-1.6)/0.4
        pytest.param(ARXIV_V0, 2000, 0.0, id="arxiv-2.0-knot"),
        pytest.param(ARXIV_V0, 2200, 0.0, id="arxiv-2.2-above"),
    ],
)
def test_level2_length_ratio_knots_and_ramps(
    spec: WritingRewardSpec, a2_chars: int, expected: float
) -> None:
    """L2 follows the length-ratio ramp; a 0 stops at level 2, else L3 (0.5) is added."""
    pair = _tldr_length_pair if spec is TLDR_V0 else _arxiv_length_pair
    score = score_writing(spec, *pair(a2_chars))
    assert score.length_ratio == pytest.approx(a2_chars / (100 if spec is TLDR_V0 else 1000))
    assert score.level1_structure == pytest.approx(0.5)
    assert score.level2_length_ratio == pytest.approx(expected)
    if expected == 0.0:
        assert score.stopped_at == 2
        assert score.level3_unique_ratio == score.level4_style == 0.0
        assert score.total == pytest.approx(0.5)
    else:
        # No shared words (J = 0) and no transitions (T = 0): L4 is 0.
        assert score.level3_unique_ratio == pytest.approx(0.5)
        assert score.level4_style == pytest.approx(0.0)
        assert score.total == pytest.approx(0.5 + expected + 0.5)


def test_length_ratio_counts_characters_of_the_stripped_answers() -> None:
    """Leading and trailing whitespace is not counted in the length ratio."""
    a1, a2 = _tldr_length_pair(240)
    score = score_writing(TLDR_V0, "\n  " + a1 + "  \n", " " + a2 + "\t")
    assert score.length_ratio == pytest.approx(2.4)
    assert score.level2_length_ratio == pytest.approx(1.0)


# --------------------------------------------------------------------------- L3: unique ratio


@pytest.mark.parametrize(
    ("spec", "a2_unique", "expected"),
    [
        # TLDR, uniq(a1) = 20, ratio = a2_unique / 20; knots 1.3 (0), 2.0 (0.5).
        pytest.param(TLDR_V0, 20, 0.0, id="tldr-1.0-below"),
        pytest.param(TLDR_V0, 24, 0.0, id="tldr-1.2-below"),
        pytest.param(TLDR_V0, 26, 0.0, id="tldr-1.3-knot"),
        pytest.param(TLDR_V0, 33, 0.25, id="tldr-1.65-mid"),  # 0.5 * (1.65-1.3)/0.7
        pytest.param(TLDR_V0, 40, 0.5, id="tldr-2.0-knot"),
        pytest.param(TLDR_V0, 60, 0.5, id="tldr-3.0-above"),
        # arXiv, uniq(a1) = 100; knots 0.5 (0), 0.7 (0.5), 1.3 (0.5), 1.7 (0).
        pytest.param(ARXIV_V0, 40, 0.0, id="arxiv-0.4-below"),
        pytest.param(ARXIV_V0, 50, 0.0, id="arxiv-0.5-knot"),
        pytest.param(ARXIV_V0, 60, 0.25, id="arxiv-0.6-mid"),  # 0.5 * (0.6-0.5)/0.2
        pytest.param(ARXIV_V0, 70, 0.5, id="arxiv-0.7-knot"),
        pytest.param(ARXIV_V0, 100, 0.5, id="arxiv-1.0-flat"),
        pytest.param(ARXIV_V0, 130, 0.5, id="arxiv-1.3-knot"),
        pytest.param(ARXIV_V0, 150, 0.25, id="arxiv-1.5-mid"),  # 0.5 - 0.5 * (1.5-1.3)/0.4
        pytest.param(ARXIV_V0, 170, 0.0, id="arxiv-1.7-knot"),
        pytest.param(ARXIV_V0, 180, 0.0, id="arxiv-1.8-above"),
    ],
)
def test_level3_unique_ratio_knots_and_ramps(
    spec: WritingRewardSpec, a2_unique: int, expected: float
) -> None:
    """L3 follows the unique-word ramp (L2 held at 1.0); a 0 stops at level 3."""
    if spec is TLDR_V0:
        # a1: 20 distinct words, 100 chars; a2: 60 words, 300 chars -> length ratio 3.0 (L2 1).
        a1 = answer(filler("qx", 20), chars=100)
        a2 = answer(filler("vx", 60, a2_unique), chars=300)
        a1_unique = 20
    else:
        # a1: 128 words, 100 distinct, 1000 chars; a2: 180 words, 1450 chars -> ratio 1.45.
        a1 = answer(filler("qx", 128, 100), chars=1000)
        a2 = answer(filler("vx", 180, a2_unique), chars=1450)
        a1_unique = 100
    score = score_writing(spec, a1, a2)
    assert score.unique_ratio == pytest.approx(a2_unique / a1_unique)
    assert score.level2_length_ratio == pytest.approx(1.0)
    assert score.level3_unique_ratio == pytest.approx(expected)
    if expected == 0.0:
        assert score.stopped_at == 3
        assert score.level4_style == 0.0
        assert score.total == pytest.approx(1.5)
    else:
        assert score.total == pytest.approx(1.5 + expected)


def test_unique_words_are_lower_cased_word_runs_with_stopwords() -> None:
    """Case and punctuation do not make new words; stopwords count as unique words."""
    # a1: "QXAA," "qxaa." "Qxaa" + qxaa..qxaj -> 13 words but only 10 distinct words.
    a1 = answer(["QXAA,", "qxaa.", "Qxaa"], filler("qx", 10), chars=100)
    # a2: 10 content words + 10 distinct stopwords -> 20 distinct words -> ratio 2.0 (L3 0.5).
    stops = "the of and to is it on at by or".split()
    a2 = answer(filler("vx", 10), stops, chars=240)
    score = score_writing(TLDR_V0, a1, a2)
    assert score.unique_ratio == pytest.approx(2.0)
    assert score.level3_unique_ratio == pytest.approx(0.5)


# --------------------------------------------------------------------------- L4: coherence T


def _tldr_style_pair(a1_extra: str = "", a2_extra: str = "") -> tuple[str, str]:
    # a1: 10 qx words (+ at most 3 transition words), 100 chars; a2: 30 vx words, 250 chars
    # -> L2 2.5 -> 1.0; uniq ratio >= 30/13 -> L3 0.5; prefixes differ and transition words sit
    # on one side only -> J = 0.
    return (
        answer(a1_extra, filler("qx", 10), chars=100),
        answer(a2_extra, filler("vx", 30), chars=250),
    )


def _arxiv_style_pair(a1_extra: str = "", a2_extra: str = "") -> tuple[str, str]:
    # 128 words, 100 distinct each; 1000 and 1450 chars -> L2 1.0, uniq ratio ~1 -> L3 0.5.
    return (
        answer(a1_extra, filler("qx", 128, 100), chars=1000),
        answer(a2_extra, filler("vx", 128, 100), chars=1450),
    )


# One short transition word per category, all 12 categories.
ALL_CATEGORIES = (
    "Moreover however thus namely next indeed overall likewise though unless later in other words"
)


@pytest.mark.parametrize(
    ("a2_extra", "categories", "coherence"),
    [
        pytest.param("", 0, 0.0, id="none"),  # T = 0
        pytest.param("However,", 1, 0.16, id="one"),  # T = 0.4 -> 0.4 * 0.4
        pytest.param("However, for example", 2, 0.18, id="two"),  # T = 0.45
        pytest.param("However, for example, finally", 3, 0.2, id="three"),  # T = 0.5
        pytest.param("However, nevertheless", 2, 0.18, id="two-in-one-sentence"),
        pytest.param("However, in contrast, instead", 1, 0.16, id="one-category-thrice"),
        pytest.param(ALL_CATEGORIES, 12, 0.38, id="all-12"),  # T = min(1, 0.4 + 0.55) = 0.95
    ],
)
def test_coherence_counts_transition_categories(
    a2_extra: str, categories: int, coherence: float
) -> None:
    """T is 0, then 0.4 + 0.05 per extra category (12 categories give 0.95); coherence = 0.4*T."""
    score = score_writing(TLDR_V0, *_tldr_style_pair(a2_extra=a2_extra))
    assert score.level2_length_ratio == pytest.approx(1.0)
    assert score.level3_unique_ratio == pytest.approx(0.5)
    assert score.transition_categories == categories
    assert score.coherence == pytest.approx(coherence)
    assert score.consistency == pytest.approx(0.0)
    assert score.level4_style == pytest.approx(coherence)
    assert score.total == pytest.approx(2.0 + coherence)


@pytest.mark.parametrize(
    ("a2_extra", "categories"),
    [
        pytest.param("also that", 0, id="also-is-not-so-that"),
        pytest.param("so that", 1, id="so-that"),
        pytest.param("thusly", 0, id="thus-inside-a-word"),
        pytest.param("overalls", 0, id="overall-inside-a-word"),
        pytest.param("unthus", 0, id="thus-at-word-end"),
        pytest.param("Furthermore,", 1, id="capital-and-comma"),
        pytest.param("FOR EXAMPLE:", 1, id="upper-case-phrase"),
        pytest.param("(however)", 1, id="in-brackets"),
        pytest.param("for\nexample", 1, id="phrase-across-line-break"),
        pytest.param("for  \n  example", 1, id="phrase-across-spaces-and-newline"),
        pytest.param("for-example", 0, id="phrase-joined-by-hyphen"),
        pytest.param("forexample", 0, id="phrase-without-space"),
    ],
)
def test_transitions_match_whole_words_and_phrases(a2_extra: str, categories: int) -> None:
    """Transitions match whole words/phrases, case-insensitively, across line breaks."""
    score = score_writing(TLDR_V0, *_tldr_style_pair(a2_extra=a2_extra))
    assert score.transition_categories == categories
    assert score.coherence == pytest.approx(0.16 if categories else 0.0)


def test_tldr_looks_for_transitions_in_answer_2_only() -> None:
    """TLDR ignores transition words in answer 1."""
    score = score_writing(TLDR_V0, *_tldr_style_pair(a1_extra="However, for example"))
    assert score.level2_length_ratio == pytest.approx(1.0)
    assert score.level3_unique_ratio == pytest.approx(0.5)
    assert score.transition_categories == 0
    assert score.coherence == 0.0
    assert score.total == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("a1_extra", "a2_extra", "categories", "coherence"),
    [
        pytest.param("However,", "", 1, 0.16, id="a1-only"),
        pytest.param("", "However,", 1, 0.16, id="a2-only"),
        pytest.param("However,", "For example,", 2, 0.18, id="union-of-two"),
        pytest.param("However,", "In contrast,", 1, 0.16, id="same-category-both-sides"),
        pytest.param("However, for example", "Finally,", 3, 0.2, id="union-of-three"),
    ],
)
def test_arxiv_looks_for_transitions_in_both_answers(
    a1_extra: str, a2_extra: str, categories: int, coherence: float
) -> None:
    """arXiv counts the union of the categories found in answer 1 and answer 2."""
    score = score_writing(ARXIV_V0, *_arxiv_style_pair(a1_extra, a2_extra))
    assert score.stopped_at == 0
    assert score.transition_categories == categories
    assert score.coherence == pytest.approx(coherence)
    assert score.consistency == pytest.approx(0.0)  # no word in common
    assert score.total == pytest.approx(2.0 + coherence)


# --------------------------------------------------------------------------- L4: consistency J


@pytest.mark.parametrize(
    ("spec", "shared", "only_1", "only_2", "jaccard", "consistency"),
    [
        # TLDR (cap 0.03): J = shared / (shared + only_1 + only_2), consistency 0.6*min(J,.03)/.03
        pytest.param(TLDR_V0, 0, 10, 20, 0.0, 0.0, id="tldr-disjoint"),
        pytest.param(TLDR_V0, 1, 30, 69, 0.01, 0.2, id="tldr-below-cap"),  # 1/100
        pytest.param(TLDR_V0, 3, 30, 67, 0.03, 0.6, id="tldr-at-cap"),  # 3/100
        pytest.param(TLDR_V0, 6, 28, 66, 0.06, 0.6, id="tldr-above-cap"),  # 6/100
        # arXiv (cap 0.23), 128 words per answer.
        pytest.param(ARXIV_V0, 0, 100, 100, 0.0, 0.0, id="arxiv-disjoint"),
        pytest.param(ARXIV_V0, 23, 88, 89, 0.115, 0.3, id="arxiv-below-cap"),  # 23/200
        pytest.param(ARXIV_V0, 23, 38, 39, 0.23, 0.6, id="arxiv-at-cap"),  # 23/100
        pytest.param(ARXIV_V0, 46, 27, 27, 0.46, 0.6, id="arxiv-above-cap"),  # 46/100
    ],
)
def test_consistency_is_capped_jaccard_of_content_words(
    spec: WritingRewardSpec,
    shared: int,
    only_1: int,
    only_2: int,
    jaccard: float,
    consistency: float,
) -> None:
    """consistency = 0.6 * min(J, cap) / cap, J the Jaccard of the two content-word sets."""
    common = vocab("sx", shared)
    if spec is TLDR_V0:
        # Unique ratios 70/31, 70/33, 72/34, 20/10 are all >= 2 (L3 0.5); 400/200 chars (L2 1).
        a1 = answer(common, filler("qx", only_1), chars=200)
        a2 = answer(common, filler("vx", only_2), chars=400)
    else:
        # Unique ratios 100/100, 112/111, 62/61, 73/73 lie in [0.7, 1.3] (L3 0.5); 1450/1000
        # chars (L2 1).
        a1 = answer(common, filler("qx", 128 - shared, only_1), chars=1000)
        a2 = answer(common, filler("vx", 128 - shared, only_2), chars=1450)
    score = score_writing(spec, a1, a2)
    assert score.level2_length_ratio == pytest.approx(1.0)
    assert score.level3_unique_ratio == pytest.approx(0.5)
    assert score.jaccard == pytest.approx(jaccard)
    assert score.coherence == 0.0
    assert score.consistency == pytest.approx(consistency)
    assert score.total == pytest.approx(2.0 + consistency)


def test_jaccard_leaves_out_stopwords_and_is_0_when_both_sets_are_empty() -> None:
    """Answers made of stopwords only have no content words: J = 0, no error."""
    a1 = answer("the of and to is it on at", chars=100)  # 8 distinct stopwords
    a2 = answer("a an the of and to in is it on at by or as be we he she you they", chars=200)
    score = score_writing(TLDR_V0, a1, a2)
    assert score.unique_ratio == pytest.approx(20 / 8)  # 2.5 -> L3 0.5
    assert score.transition_categories == 0
    assert score.jaccard == 0.0
    assert score.consistency == 0.0
    assert score.total == pytest.approx(0.5 + 1.0 + 0.5)


def test_shared_stopwords_do_not_raise_jaccard() -> None:
    """Stopwords common to both answers are not content words and do not count in J."""
    stops = "the of and to is it".split()
    a1 = answer(stops, filler("qx", 10), chars=200)
    a2 = answer(stops, filler("vx", 30), chars=400)
    assert score_writing(TLDR_V0, a1, a2).jaccard == 0.0


# --------------------------------------------------------------------------- full examples


def tldr_full_example() -> tuple[str, str]:
    """Every TLDR level scores, on ramps where possible."""
    # a1: "sxaa" + 19 qx words = 20 words, 20 distinct (all content words), 200 chars.
    a1 = answer(vocab("sx", 1), filler("qx", 19), chars=200)
    # a2: "Moreover," (addition) + "sxaa" + 18 vx words + "Finally," (sequence) + 12 stopwords:
    # 33 words, 33 distinct (21 content words), 270 chars.
    stops = "the of and to in is it on at by or as".split()
    a2 = answer("Moreover,", vocab("sx", 1), filler("vx", 18), "Finally,", stops, chars=270)
    return a1, a2


def test_tldr_full_example() -> None:
    """A hand-worked TLDR pair: 0.5 + 0.5 + 0.25 + 0.18 + 0.5 = 1.93."""
    score = score_writing(TLDR_V0, *tldr_full_example())
    assert score.words == (20, 33)
    assert score.level1_structure == pytest.approx(0.5)
    # 270 / 200 = 1.35 -> (1.35 - 1.1) / 0.5 = 0.5
    assert score.length_ratio == pytest.approx(1.35)
    assert score.level2_length_ratio == pytest.approx(0.5)
    # 33 / 20 = 1.65 -> 0.5 * (1.65 - 1.3) / 0.7 = 0.25
    assert score.unique_ratio == pytest.approx(1.65)
    assert score.level3_unique_ratio == pytest.approx(0.25)
    # 2 categories -> T = 0.45 -> 0.4 * 0.45 = 0.18
    assert score.transition_categories == 2
    assert score.coherence == pytest.approx(0.18)
    # content: {sxaa} + 19 qx vs {sxaa, moreover, finally} + 18 vx: J = 1/40 = 0.025
    # -> 0.6 * 0.025 / 0.03 = 0.5
    assert score.jaccard == pytest.approx(0.025)
    assert score.consistency == pytest.approx(0.5)
    assert score.level4_style == pytest.approx(0.68)
    assert score.stopped_at == 0
    assert score.structure == pytest.approx(1.25)
    assert score.total == pytest.approx(1.93)


def arxiv_full_example() -> tuple[str, str]:
    """Every arXiv level scores, on ramps where possible."""
    common = vocab("sx", 13)
    # a1: "However," "Therefore," + 13 sx + 85 qx (+28 repeats) = 128 words, 100 distinct
    # (all content words), 1000 chars.
    a1 = answer("However,", "Therefore,", common, filler("qx", 113, 85), chars=1000)
    # a2: "For example," "Therefore," + 13 sx + 5 stopwords + 39 vx (+68 repeats) = 128 words,
    # 60 distinct (54 content words: example, therefore, 13 sx, 39 vx), 1800 chars.
    stops = "the of and to is".split()
    a2 = answer("For example,", "Therefore,", common, stops, filler("vx", 107, 39), chars=1800)
    return a1, a2


def test_arxiv_full_example() -> None:
    """A hand-worked arXiv pair: 0.5 + 0.5 + 0.25 + 0.2 + 6/23 = 1.45 + 6/23."""
    score = score_writing(ARXIV_V0, *arxiv_full_example())
    assert score.words == (128, 128)
    assert score.level1_structure == pytest.approx(0.5)
    # 1800 / 1000 = 1.8 -> 1 - (1.8 - 1.6) / 0.4 = 0.5
    assert score.level2_length_ratio == pytest.approx(0.5)
    # 60 / 100 = 0.6 -> 0.5 * (0.6 - 0.5) / 0.2 = 0.25
    assert score.unique_ratio == pytest.approx(0.6)
    assert score.level3_unique_ratio == pytest.approx(0.25)
    # a1 {contrast, cause_effect} | a2 {example, cause_effect} = 3 -> T = 0.5 -> 0.2
    assert score.transition_categories == 3
    assert score.coherence == pytest.approx(0.2)
    # shared {therefore} + 13 sx = 14; union 100 + 54 - 14 = 140; J = 0.1
    # -> 0.6 * 0.1 / 0.23 = 6/23
    assert score.jaccard == pytest.approx(0.1)
    assert score.consistency == pytest.approx(6 / 23)
    assert score.stopped_at == 0
    assert score.total == pytest.approx(1.45 + 6 / 23)


def test_best_possible_pair_scores_2_98() -> None:
    """All 12 categories (T 0.95) and J over the cap give 0.5+1+0.5+0.38+0.6 = 2.98 <= 3."""
    common = vocab("sx", 5)
    a1 = answer(common, filler("qx", 10), chars=200)  # 15 distinct content words
    a2 = answer(ALL_CATEGORIES, common, filler("vx", 20), chars=500)  # 2.5 chars ratio
    score = score_writing(TLDR_V0, a1, a2)
    assert score.transition_categories == 12
    assert score.jaccard > 0.03
    assert score.total == pytest.approx(2.98)
    assert score.total <= 3.0


# --------------------------------------------------------------------------- gating


@pytest.mark.parametrize("spec", SPECS)
def test_level2_zero_stops_the_sum_even_if_later_levels_would_score(
    spec: WritingRewardSpec,
) -> None:
    """With L2 = 0 the total is exactly 0.5 though L3 and L4 inputs would score."""
    common = vocab("sx", 10)
    if spec is TLDR_V0:
        a1_words, a2_words = filler("qx", 10), filler("vx", 30)
        a1_chars, bad_chars, good_chars = 250, 250, 500  # ratios 1.0 (L2 0) and 2.0 (L2 1)
    else:
        a1_words, a2_words = filler("qx", 118, 90), filler("vx", 118, 90)
        a1_chars, bad_chars, good_chars = 1000, 2200, 1450  # ratios 2.2 (L2 0) and 1.45
    a1 = answer("However,", common, a1_words, chars=a1_chars)
    gated = score_writing(spec, a1, answer("For example,", common, a2_words, chars=bad_chars))
    control = score_writing(spec, a1, answer("For example,", common, a2_words, chars=good_chars))
    # The same words with a passing length ratio score on every level.
    assert control.stopped_at == 0
    assert control.level3_unique_ratio > 0.0
    assert control.coherence > 0.0
    assert control.consistency > 0.0
    # With a failing length ratio nothing after level 1 counts.
    assert gated.level1_structure == pytest.approx(0.5)
    assert gated.level2_length_ratio == 0.0
    assert gated.level3_unique_ratio == 0.0
    assert gated.level4_style == gated.coherence == gated.consistency == 0.0
    assert gated.stopped_at == 2
    assert gated.total == pytest.approx(0.5)


# --------------------------------------------------------------------------- individual shares


def test_individual_shares_tldr_both_in_band() -> None:
    """TLDR: 0.25 each, L2, L3 and consistency halved, coherence (on a2) to agent 1."""
    score = score_writing(TLDR_V0, *tldr_full_example())
    # shared half = 0.5 * (0.5 + 0.25 + 0.5) = 0.625
    assert score.individual[0] == pytest.approx(0.25 + 0.625)  # 0.875
    assert score.individual[1] == pytest.approx(0.25 + 0.625 + 0.18)  # 1.055
    assert sum(score.individual) == pytest.approx(score.total)


def test_individual_shares_arxiv_both_in_band() -> None:
    """arXiv: 0.25 each, L2, L3, consistency and coherence (on both answers) halved."""
    score = score_writing(ARXIV_V0, *arxiv_full_example())
    each = 0.25 + 0.5 * (0.5 + 0.25 + 6 / 23) + 0.5 * 0.2
    assert score.individual == pytest.approx((each, each))
    assert sum(score.individual) == pytest.approx(score.total)


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize(
    ("a1_ok", "a2_ok", "expected"),
    [
        pytest.param(True, False, (0.25, 0.0), id="only-a1-in-band"),
        pytest.param(False, True, (0.0, 0.25), id="only-a2-in-band"),
        pytest.param(False, False, (0.0, 0.0), id="neither-in-band"),
    ],
)
def test_individual_shares_when_an_answer_is_out_of_band(
    spec: WritingRewardSpec, a1_ok: bool, a2_ok: bool, expected: tuple[float, float]
) -> None:
    """An agent keeps 0.25 for its own in-band answer; the team total is 0."""
    lo, hi = spec.word_band
    # In band: lo words; out of band: hi + 1 words for a1, lo - 1 words for a2.
    a1 = answer("However,", filler("qx", lo - 1 if a1_ok else hi))
    a2 = answer("For example,", filler("vx", lo - 2 if a2_ok else lo - 3))
    score = score_writing(spec, a1, a2)
    assert score.words == (lo if a1_ok else hi + 1, lo if a2_ok else lo - 1)
    assert score.total == 0.0
    assert score.stopped_at == 1
    assert score.individual == pytest.approx(expected)


# --------------------------------------------------------------------------- terms


@pytest.mark.parametrize(
    ("spec", "pair"),
    [
        pytest.param(TLDR_V0, tldr_full_example(), id="tldr-full"),
        pytest.param(ARXIV_V0, arxiv_full_example(), id="arxiv-full"),
        pytest.param(TLDR_V0, _tldr_length_pair(100), id="tldr-gated-at-2"),
        pytest.param(ARXIV_V0, _arxiv_length_pair(1450), id="arxiv-no-style"),
        pytest.param(TLDR_V0, ("too short", "also too short"), id="tldr-gated-at-1"),
    ],
)
def test_terms_and_groups_sum_to_the_total(spec: WritingRewardSpec, pair: tuple[str, str]) -> None:
    """terms() has every level and group; structure + coherence + consistency == total."""
    score = score_writing(spec, *pair)
    terms = score.terms()
    assert set(terms) == TERM_KEYS
    assert terms["structure"] == pytest.approx(
        terms["level1_structure"] + terms["level2_length_ratio"] + terms["level3_unique_ratio"]
    )
    assert terms["level4_style"] == pytest.approx(terms["coherence"] + terms["consistency"])
    assert terms["total"] == pytest.approx(
        terms["structure"] + terms["coherence"] + terms["consistency"]
    )
    assert terms["total"] == pytest.approx(score.total)
    assert 0.0 <= score.total <= 3.0


# ----------------------------------------------------------------- teams of n writers
TEAM_ANSWERS = (
    "The author asks whether to move to a new city for a better paid job offer.",
    "The author, who has lived in the same town for ten years, received an offer that pays "
    "far more; however, moving means leaving friends behind. Therefore they ask for advice.",
    "The author, who has lived in the same small town for ten years and knows everyone there, "
    "received a job offer from a company in a distant city that pays far more than the current "
    "position; however, moving means leaving close friends, a familiar routine and an ageing "
    "parent behind. Therefore they weigh career growth against family duty, list what they "
    "tried, and ask readers for advice on how others handled similar relocations.",
)


@pytest.mark.parametrize("spec", [TLDR_V0, ARXIV_V0])
def test_two_writer_team_score_is_exactly_the_pair_score(spec) -> None:
    """For n = 2 the team reward, terms, measures and shares are the pair's, bit for bit."""
    for a, b in ((TEAM_ANSWERS[0], TEAM_ANSWERS[1]), (TEAM_ANSWERS[1], TEAM_ANSWERS[0])):
        pair, team = score_writing(spec, a, b), score_writing_team(spec, [a, b])
        assert team.total == pair.total
        assert team.terms() == pair.terms()
        assert team.measures() == pair.measures()
        assert team.individual == pair.individual
        assert team.stopped_at == pair.stopped_at


def test_three_writer_score_is_the_mean_over_consecutive_pairs() -> None:
    """n = 3: hand-computed from the two pair scores (a0, a1) and (a1, a2)."""
    a0, a1, a2 = TEAM_ANSWERS
    p01, p12 = score_writing(TLDR_V0, a0, a1), score_writing(TLDR_V0, a1, a2)
    team = score_writing_team(TLDR_V0, [a0, a1, a2])
    assert p01.stopped_at == p12.stopped_at == 0
    assert team.total == pytest.approx((p01.total + p12.total) / 2)
    assert team.terms()["level2_length_ratio"] == pytest.approx(
        (p01.level2_length_ratio + p12.level2_length_ratio) / 2
    )
    assert team.individual == pytest.approx(
        (
            p01.individual[0] / 2,
            (p01.individual[1] + p12.individual[0]) / 2,
            p12.individual[1] / 2,
        )
    )
    assert sum(team.individual) == pytest.approx(team.total)  # every answer inside the band
    measures = team.measures()
    assert [measures[f"words_{k}"] for k in range(3)] == [len(a.split()) for a in TEAM_ANSWERS]
    assert measures["length_ratio_1"] == p12.length_ratio and measures["stopped_at_level"] == 0


def test_three_writer_hand_computed_gating() -> None:
    """An empty last answer stops pair (a1, a2) at level 1: the team gets half of pair (a0, a1).

    Shares: agent 2 has nothing; pair (a1, a2) gives agent 1 its own 0.25 band points.
    """
    a0, a1, _ = TEAM_ANSWERS
    p01 = score_writing(TLDR_V0, a0, a1)
    team = score_writing_team(TLDR_V0, [a0, a1, ""])
    assert team.total == pytest.approx(p01.total / 2)
    assert team.stopped_at == 1 and team.measures()["stopped_at_level_1"] == 1
    assert team.individual[2] == 0.0
    assert team.individual[1] == pytest.approx((p01.individual[1] + 0.25) / 2)
    all_empty = score_writing_team(TLDR_V0, ["", "", ""])
    assert all_empty.total == 0.0 and all_empty.individual == (0.0, 0.0, 0.0)


def test_team_score_needs_two_answers() -> None:
    """One answer, or a bare string, is refused with the value named."""
    with pytest.raises(ValueError, match=r"at least two answers, got \['only'\]"):
        score_writing_team(TLDR_V0, ["only"])
    with pytest.raises(ValueError, match="at least two answers, got 'ab'"):
        score_writing_team(TLDR_V0, "ab")
