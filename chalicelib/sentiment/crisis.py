"""Per-playbook crisis terms that force a mention into the negative series.

Terms come from playbooks (configuration), never from code. Matching is case-insensitive, on word
boundaries, Hebrew-aware (attached one-letter prefixes, final letters) and tolerant of simple English
inflections, because a crisis word must count however it is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from chalicelib.sentiment.language import HEBREW_LETTERS
from chalicelib.sentiment.text import fold

_HEBREW_PREFIXES = "[ובלמשהכ]{0,4}"
"""Up to four attached one-letter prefixes: ו ה ב ל מ ש כ ('וכשהחרם', 'שבתביעה')."""
_LATIN_AFTER_PREFIX = "(?:[ובלמשהכ]{1,3}-?)?"
"""Hebrew text often attaches a prefix to a Latin word with a hyphen ('ה-boycott')."""
_VOWELS = "aeiou"


def _english_forms(word: str) -> list[str]:
    """The word and its regular inflections: boycott -> boycotts, boycotted, boycotting, boycotter(s)."""
    stems = [word]
    if word.endswith("e"):
        stems.append(word[:-1])  # sue -> suing, sued
    if len(word) >= 3 and word[-1] not in _VOWELS + "wxy" and word[-2] in _VOWELS and word[-3] not in _VOWELS:
        stems.append(word + word[-1])  # ban -> banned, banning
    forms = {word, word + "s", word + "es", word + "'s", word + "d"}
    if word.endswith("y") and len(word) > 1 and word[-2] not in _VOWELS:
        forms.update({word[:-1] + "ies", word[:-1] + "ied"})
    for stem in stems:
        forms.update({stem + "ed", stem + "ing", stem + "er", stem + "ers"})
    return sorted(forms, key=len, reverse=True)


def _word_pattern(word: str, first: bool, last: bool) -> str:
    """Regex for one word of a term: Hebrew prefixes on the first word, English inflections on the last."""
    if HEBREW_LETTERS.search(word):
        return (_HEBREW_PREFIXES if first else "") + re.escape(word)
    prefix = _LATIN_AFTER_PREFIX if first else ""
    if last and word.isascii() and word.isalpha():
        return prefix + "(?:" + "|".join(map(re.escape, _english_forms(word))) + ")"
    return prefix + re.escape(word)


@lru_cache(maxsize=64)
def _matcher(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    """One compiled alternation for a playbook's terms (cached: playbooks change rarely)."""
    patterns = []
    for term in terms:
        words = fold(term).split()
        if words:
            parts = [_word_pattern(w, i == 0, i == len(words) - 1) for i, w in enumerate(words)]
            patterns.append(r"[\s\-_]+".join(parts))
    if not patterns:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(patterns) + r")(?!\w)")


def has_crisis_term(text: str, terms: Iterable[str]) -> bool:
    """True when the text mentions any of the terms."""
    matcher = _matcher(tuple(terms))
    return matcher is not None and matcher.search(fold(text)) is not None


def apply_crisis_terms(texts: list[str], labels: list[str], terms: Iterable[str]) -> list[str]:
    """Labels with every text that mentions a crisis term forced to 'negative'."""
    matcher = _matcher(tuple(terms))
    if matcher is None:
        return list(labels)
    return ["negative" if matcher.search(fold(t)) else label for t, label in zip(texts, labels, strict=True)]


def english_forms(word: str) -> list[str]:
    """The inflected forms a one-word English term matches (for prefilters keyed on words)."""
    return _english_forms(word)


def term_matcher(terms: Iterable[str]) -> re.Pattern[str] | None:
    """The compiled matcher for `terms` (search it in `fold(text)`), for callers that test several term
    lists against one text (triage topics) and so fold the text once."""
    return _matcher(tuple(terms))
