"""Language and sentiment of mentions: numpy-only at run time, model loaded lazily once per container.

Public API (the ingest handler calls these):
- classify(texts, crisis_terms=()) -> ["negative" | "neutral" | "positive", ...]
- detect_language(text) -> "he" | "en" | "ar" | "ru" | "other"
- apply_crisis_terms(texts, labels, terms) -> labels, for playbook-configured crisis terms
- SentimentBackend, the protocol a hosted model implements (selected by KLAXON_SENTIMENT_BACKEND)
"""

from __future__ import annotations

from collections.abc import Iterable

from chalicelib.sentiment.backend import LABELS, SentimentBackend, classify_with, get_backend
from chalicelib.sentiment.crisis import apply_crisis_terms, has_crisis_term
from chalicelib.sentiment.language import detect_language

__all__ = [
    "LABELS",
    "SentimentBackend",
    "apply_crisis_terms",
    "classify",
    "detect_language",
    "has_crisis_term",
]


def classify(texts: list[str], crisis_terms: Iterable[str] = ()) -> list[str]:
    """Label each text negative, neutral or positive; texts with a crisis term are always negative."""
    labels = classify_with(get_backend(), list(texts))
    terms = tuple(crisis_terms)
    return apply_crisis_terms(texts, labels, terms) if terms else labels
