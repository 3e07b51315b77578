"""Word lists and text statistics shared by the writing rewards.

Words are lower-cased runs of Unicode word characters (``\\w+``); transition words and phrases
match as whole words only, so "so" does not fire inside "also" (the reference code matched
substrings; we do not copy that bug).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping

__all__ = [
    "STOPWORDS",
    "TRANSITIONS",
    "content_words",
    "jaccard",
    "transition_categories",
    "unique_words",
    "whitespace_words",
    "words",
]

_WORD = re.compile(r"\w+")

#: Function words left out of the consistency (Jaccard) comparison.
STOPWORDS: frozenset[str] = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    """.split()
)

#: Twelve categories of transition words and phrases; coherence counts the categories used.
TRANSITIONS: Mapping[str, tuple[str, ...]] = {
    "addition": ("additionally", "furthermore", "moreover", "in addition", "besides",
                 "what is more", "as well as", "not only"),
    "contrast": ("however", "on the other hand", "in contrast", "by contrast", "conversely",
                 "instead", "on the contrary", "whereas", "rather than"),
    "cause_effect": ("therefore", "thus", "consequently", "as a result", "hence", "accordingly",
                     "because of this", "for this reason", "so that", "which means"),
    "example": ("for example", "for instance", "such as", "to illustrate", "namely",
                "in particular", "specifically"),
    "sequence": ("first", "firstly", "second", "secondly", "third", "next", "then", "finally",
                 "lastly", "afterwards", "subsequently", "to begin with"),
    "emphasis": ("indeed", "in fact", "notably", "importantly", "above all", "certainly",
                 "especially", "clearly"),
    "summary": ("in summary", "in conclusion", "to summarize", "to sum up", "overall",
                "in short", "in brief", "ultimately", "all in all"),
    "comparison": ("similarly", "likewise", "in the same way", "equally", "compared to",
                   "compared with", "just as"),
    "concession": ("although", "though", "even though", "nevertheless", "nonetheless",
                   "despite", "in spite of", "admittedly", "even so"),
    "condition": ("unless", "provided that", "as long as", "in case", "otherwise",
                  "even if", "assuming that"),
    "time": ("meanwhile", "previously", "later", "eventually", "currently", "recently",
             "at the same time", "since then", "until now"),
    "clarification": ("in other words", "that is to say", "to clarify", "put simply",
                      "more precisely", "to put it differently", "this means"),
}  # fmt: skip


def whitespace_words(text: str) -> int:
    """Number of whitespace-separated tokens: the word count of the structure level."""
    return len(text.split())


def words(text: str) -> list[str]:
    """Lower-cased word tokens (runs of ``\\w``), in order."""
    return _WORD.findall(text.casefold())


def unique_words(text: str) -> int:
    """Number of distinct lower-cased words."""
    return len(set(words(text)))


def content_words(text: str) -> set[str]:
    """Distinct lower-cased words that are not stopwords."""
    return {w for w in words(text) if w not in STOPWORDS}


def jaccard(text_a: str, text_b: str) -> float:
    """Jaccard similarity of the two texts' content-word sets; 0.0 when both are empty."""
    a, b = content_words(text_a), content_words(text_b)
    union = a | b
    return len(a & b) / len(union) if union else 0.0


def _phrases_by_first_word() -> dict[str, list[tuple[tuple[str, ...], str]]]:
    index: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for category, phrases in TRANSITIONS.items():
        for phrase in phrases:
            phrase_words = tuple(phrase.split())
            assert all(_WORD.fullmatch(w) for w in phrase_words), phrase
            index.setdefault(phrase_words[0], []).append((phrase_words, category))
    return index


_PHRASES = _phrases_by_first_word()


def transition_categories(text: str) -> frozenset[str]:
    """The transition categories of :data:`TRANSITIONS` that occur in ``text`` as whole words.

    A phrase matches a run of whole words separated by whitespace only, ignoring case: "For
    example" and "for\nexample" match, "for-example" and "also" (for "so") do not.
    """
    folded = text.casefold()
    tokens = _WORD.findall(folded)
    spans: list[tuple[int, int]] = []  # (start, end) of each token, built only when needed
    found: set[str] = set()
    for i, token in enumerate(tokens):
        for phrase, category in _PHRASES.get(token, ()):
            if category in found or tuple(tokens[i : i + len(phrase)]) != phrase:
                continue
            if len(phrase) > 1:
                spans = spans or [m.span() for m in _WORD.finditer(folded)]
                gaps = (
                    folded[a[1] : b[0]] for a, b in itertools.pairwise(spans[i : i + len(phrase)])
                )
                if not all(gap.isspace() for gap in gaps):
                    continue
            found.add(category)
    return frozenset(found)
