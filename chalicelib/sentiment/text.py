"""Text normalisation and tokenisation shared by the runtime and the training script.

Pure Python (``re`` only) so the same code produces the same tokens in Lambda and in training.
"""

from __future__ import annotations

import re

MAX_CHARS = 2000
"""Longer texts are cut: mentions are short, and a 10 kB paste must not stall a batch."""

_STRIP = re.compile(
    "["
    "\ud800-\udfff"  # lone surrogates (invalid UTF-16 halves that JSON can smuggle in)
    "\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7"  # Hebrew niqqud and cantillation marks
    "\u064b-\u065f\u0670"  # Arabic harakat
    "\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufe00-\ufe0f"  # bidi, zero-width, variation sel.
    "]+"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u05be]+")  # control chars, separators, maqaf
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_HANDLE = re.compile(r"@\w+")
_HASHTAG = re.compile(r"#(\w+)")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_ELONGATED = re.compile(r"(.)\1{2,}")
_LETTERS = {"ם": "מ", "ן": "נ", "ץ": "צ", "ף": "פ", "ך": "כ", "’": "'", "‘": "'", "`": "'", "“": '"', "”": '"',
            "״": '"', "׳": "'", "…": "..."}
_FOLD = str.maketrans(_LETTERS)
"""Hebrew final letters to their medial forms (so prefixed/suffixed forms line up), quotes unified."""
_FOLD_DIGITS = str.maketrans({**_LETTERS, **{str(d): "0" for d in range(10)}})
"""As _FOLD, and digits collapsed to 0: exact numbers carry no sentiment."""

_TOKEN = re.compile(
    r"\w+(?:'\w+)*"  # words, including _url_ and Hebrew
    r"|@user"
    r"|[<>]?[:;=][-o*']?[()\[\]dp/\\|@3}{]+(?!\w)"  # western emoticons (lower-cased), e.g. :) ;-( :d :p
    r"|<3+"
    r"|[^\w\s]"  # any other single non-space character: punctuation or emoji
)
_NEGATORS = frozenset(
    "not no never nothing nobody none nowhere neither nor cannot cant dont doesnt didnt isnt wasnt arent"
    " werent wont wouldnt shouldnt couldnt aint without לא אינ אינו אינה אינמ אינכ אינני אינכמ בלי אפ"
    .split()
)
_SCOPE_END = frozenset(".,!?;:\"()")


def _hashtag(match: re.Match[str]) -> str:
    """Drop '#' and split camelCase so #NeverAgain reads as 'never again'."""
    return " " + _CAMEL.sub(" ", match.group(1)) + " "


def clean(text: str) -> str:
    """Text without lone surrogates, niqqud, bidi and zero-width marks; control characters become spaces."""
    return _CONTROL.sub(" ", _STRIP.sub("", text))


def fold(text: str) -> str:
    """Lower-case, cleaned text with hashtags split and Hebrew final letters folded (for term matching)."""
    return _HASHTAG.sub(_hashtag, clean(text)).lower().translate(_FOLD)


def normalise(text: str) -> str:
    """Canonical form for features: as fold(), plus URLs, @handles, elongations and digits collapsed."""
    return normalise_many([text])[0]


def normalise_many(texts: list[str]) -> list[str]:
    """normalise() of each text, with each regex run once over the whole batch rather than once per text.

    clean() turns every newline into a space, so texts can be joined with newlines: no pattern matches
    across one (URLs stop at whitespace, '.' never matches a newline), and the result is the same as
    normalising text by text, at a fraction of the per-call overhead.
    """
    text = "\n".join([clean(t[: MAX_CHARS * 2]) for t in texts])
    text = _HANDLE.sub("@user", _URL.sub(" _url_ ", text))
    text = _HASHTAG.sub(_hashtag, text).lower().translate(_FOLD_DIGITS)
    return [" ".join(t.split())[:MAX_CHARS] for t in _ELONGATED.sub(r"\1\1", text).split("\n")]


def tokenise(norm: str) -> list[str]:
    """Word tokens of a normalised text, with a 'neg_' mark on words in a negation's scope.

    Scope runs from a negator to the next punctuation mark ("not good at all." -> neg_good neg_at neg_all).
    """
    tokens: list[str] = _TOKEN.findall(norm)
    if "n't" not in norm and _NEGATORS.isdisjoint(tokens):
        return tokens  # the common case: no negation, no per-token loop
    out: list[str] = []
    negated = False
    for tok in tokens:
        if tok in _SCOPE_END:
            negated = False
            out.append(tok)
        elif negated:
            out.append("neg_" + tok)
        else:
            out.append(tok)
            if tok in _NEGATORS or tok.endswith("n't"):
                negated = True
    return out
