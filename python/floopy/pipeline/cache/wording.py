"""The wording check of the semantic and advanced tiers: what an embedding does not see.

A sentence embedding places "Convert 10 miles to kilometers" and "Convert 10 kilometers to
miles", or "Is it safe..." and "Is it not safe...", closer together (cosine above 0.99
with the local model) than many true paraphrases; no threshold tells them apart
(``benches/cache/pairs.jsonl`` and ``docs/cache.md`` give the measurement). So a stored
prompt answers a new one only when, besides the similarity, their wording agrees:

1. the same numbers (every run of digits, as a multiset) and the same count of polarity
   words (not, no, never, without, against...): both part of ``literals``, an exact filter
   of the vector search;
2. the content words (the text without the question words, pronouns, auxiliaries and
   politeness a paraphrase adds or drops, and without the four words of step 3) of one are
   all among the other's: a paraphrase may
   add or drop words ("capital city"), never swap one for another (France for Germany,
   Python for JavaScript, watts for kilowatts, increase for decrease);
3. the word after each of "to", "into", "in" and "from" is the same in both wherever both
   have that word, so that "miles to kilometers" never answers "kilometers to miles".
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_FILLER_WORDS = """
    a an the is are was were be been being am do does did doing done have has had having
    what which who whom whose how when where why me my mine you your yours we us our they
    them their it its this that these those there here can could would should will shall
    may might must please kindly just exactly really briefly simply simple terms tell give
    show explain describe write make get let help want need like some any all of on at
    for with by about onto as and or but so if then than hi hello hey thanks thank ok okay
    way suggest recommend find know say
"""
_FILLER = frozenset(_FILLER_WORDS.split())
_POLARITY_WORDS = "not no never without against none nor neither nothing nobody nowhere"
_POLARITY = frozenset(_POLARITY_WORDS.split())
_DIRECTIONS = ("to", "into", "in", "from")
_SET_ASIDE = frozenset(_DIRECTIONS)  # checked by step 3, not step 2
_CONTRACTIONS = (
    ("\u2019", "'"),
    ("can't", "can not"),
    ("won't", "will not"),
    ("n't", " not"),
    ("cannot", "can not"),
)
_SUFFIX = re.compile(r"'(?:s|re|ve|ll|d|m)\b")
_TOKEN = re.compile(r"[^\W\d_]+|\d+")


@dataclass(frozen=True, slots=True)
class Wording:
    literals: str  # hex hash of the numbers and the polarity count: must be equal
    words: tuple[str, ...]  # content words, in order

    def agrees(self, other: tuple[str, ...]) -> bool:
        """Steps 2 and 3, against a stored prompt's content words."""
        mine, theirs = set(self.words) - _SET_ASIDE, set(other) - _SET_ASIDE
        if not (mine <= theirs or theirs <= mine):
            return False
        return all(
            _after(self.words, word) == _after(other, word)
            for word in _DIRECTIONS
            if _after(self.words, word) and _after(other, word)
        )


def wording(text: str) -> Wording:
    tokens = _tokens(text)
    numbers = sorted(t for t in tokens if t.isdigit())
    polarity = sum(t in _POLARITY for t in tokens)
    mark = f"{polarity}\0{' '.join(numbers)}".encode()
    literals = hashlib.blake2b(mark, digest_size=8).hexdigest()
    words = tuple(w for w in map(_stem, tokens) if w not in _FILLER)
    return Wording(literals, words)


def _tokens(text: str) -> list[str]:
    text = text.lower()
    for written, meant in _CONTRACTIONS:
        text = text.replace(written, meant)
    return _TOKEN.findall(_SUFFIX.sub(" ", text))


def _stem(word: str) -> str:
    """Plurals folded, roughly: "exercises" and "exercise" are one word."""
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _after(words: tuple[str, ...], marker: str) -> frozenset[str]:
    return frozenset(words[i + 1] for i, w in enumerate(words[:-1]) if w == marker)
