"""Language identification by script, with a stop-word check to tell English from other Latin text.

Mentions are short and noisy, so a character-script vote is more reliable than an n-gram model here,
and it costs a few regex scans per text.
"""

from __future__ import annotations

import re

from chalicelib.sentiment.text import clean

_NOISE = re.compile(r"(?:https?://|www\.)\S+|@\w+|&\w+;")
HEBREW_LETTERS = re.compile(r"[\u05d0-\u05ea\u05f0-\u05f2\ufb1d-\ufb4f]+")
_ARABIC = re.compile(
    r"[\u0620-\u064a\u066e-\u06d3\u06d5\u06fa-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufefc]+"
)
_CYRILLIC = re.compile(r"[\u0400-\u04ff]+")
_LATIN = re.compile(r"[a-zA-Z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]+")
_LETTERS = re.compile(r"[^\W\d_]+")
_LATIN_WORD = re.compile(r"[a-z\u00c0-\u024f']+")
_NOT_ARABIC = re.compile(r"[پچژگٹڈڑںے]")  # Persian / Urdu letters that Arabic does not use
_NOT_RUSSIAN = re.compile(r"[іїєґўђјљњћџ]", re.IGNORECASE)  # Ukrainian, Belarusian, Serbian, Macedonian
_NON_ASCII_LATIN = re.compile(r"[\u00c0-\u024f]")

_EN_WORDS = frozenset(
    "the and is are was were to of in for on with that this it you i my me be been have has had not but at so"
    " just what all they we your do does did from like get it's i'm can will would love don't if or an about"
    " how when who there their our out up one more today tomorrow".split()
)
_OTHER_LATIN_WORDS = frozenset(
    # French, Spanish, Portuguese, Italian, German, Dutch, Turkish, Indonesian function words not used in English
    "le la les des est et une du pas pour qui que dans sur avec je tu il elle nous vous ce c'est très mais"
    " el los las es y una por para con muy pero del al lo su como más está estoy tengo"
    " os um não você muito também são"
    " gli è di sono della questo anche"
    " der das und ist nicht ich du ein eine mit auf für sehr aber zu wir sie auch"
    " het een niet ik je en"
    " ve bir bu çok ama için"
    " yang di dengan tidak ini itu".split()
)


def detect_language(text: str) -> str:
    """'he', 'en', 'ar', 'ru' or 'other' for the text's dominant script.

    URLs, @handles and HTML entities are ignored (they are Latin noise inside any language); '#' is
    dropped but hashtag words count. Non-Latin letters weigh double against Latin ones, and Latin text
    without a single English function word does not outvote them, because Hebrew, Arabic and Russian
    mentions routinely quote Latin brand names ('купил iPhone в Apple Store').
    """
    text = _NOISE.sub(" ", clean(text))
    hebrew = sum(map(len, HEBREW_LETTERS.findall(text)))
    arabic = sum(map(len, _ARABIC.findall(text)))
    cyrillic = sum(map(len, _CYRILLIC.findall(text)))
    latin = sum(map(len, _LATIN.findall(text)))
    rest = sum(map(len, _LETTERS.findall(text))) - hebrew - arabic - cyrillic - latin
    best, script = max((hebrew, "he"), (arabic, "ar"), (cyrillic, "ru"), (rest, "other"))
    if best == 0 and latin == 0:
        return "other"
    if best and (2 * best >= latin or not _english_words(text.lower())):
        if script == "ar" and _NOT_ARABIC.search(text):
            return "other"
        if script == "ru" and _NOT_RUSSIAN.search(text):
            return "other"
        return script
    return _latin_language(text.lower(), latin)


def _english_words(lower: str) -> int:
    """How many English function words the text has (brand names alone do not make a text English)."""
    return sum(1 for w in _LATIN_WORD.findall(lower) if w in _EN_WORDS)


def _latin_language(lower: str, latin: int) -> str:
    """'en' unless other Latin-script languages' function words or accented letters dominate."""
    english = _english_words(lower)
    other = sum(1 for w in _LATIN_WORD.findall(lower) if w in _OTHER_LATIN_WORDS)
    if other > english:
        return "other"
    if english == 0 and len(_NON_ASCII_LATIN.findall(lower)) * 10 > latin:
        return "other"
    return "en"
