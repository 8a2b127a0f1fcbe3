"""Language and sentiment of mentions (placeholder until the bundled model lands)."""

from __future__ import annotations


def classify(texts: list[str], crisis_terms: tuple[str, ...] | list[str] = ()) -> list[str]:
    """Label each text negative, neutral or positive; a crisis term forces negative."""
    terms = [t.casefold() for t in crisis_terms]
    return ["negative" if any(t in text.casefold() for t in terms) else "neutral" for text in texts]


def detect_language(text: str) -> str:
    """ISO-639-1 code of the text's dominant script, or "other"."""
    hebrew = sum(1 for ch in text if "\u0590" <= ch <= "\u05ff")
    latin = sum(1 for ch in text if ch.isascii() and ch.isalpha())
    if hebrew and hebrew >= latin:
        return "he"
    return "en" if latin else "other"
