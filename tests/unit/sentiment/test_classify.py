"""classify: never raises, always one valid label per text, whatever the input looks like."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.sentiment import LABELS, classify

AWKWARD = {
    "empty": "",
    "whitespace": " \t\n ",
    "emoji only": "😡😡😡",
    "emoji sequence": "👨\u200d👩\u200d👧 🇮🇱",
    "10 kB": "terrible service, " * 600,
    "10 kB Hebrew": "שירות גרוע " * 1000,
    "mixed Hebrew/English": "ה-iPhone החדש של Apple פשוט great, ממליץ!",
    "RTL marks": "\u200fשירות מעולה\u200f \u202bתודה\u202c \u2067אחלה\u2069",
    "lone surrogate": "bad \ud800 service",
    "lone low surrogate": "\udfff",
    "NUL and controls": "a\x00b\x01c\x7f",
    "URL and handle only": "@acme https://t.co/xyz",
    "arabic": "خدمة سيئة جدا",
    "russian": "ужасный сервис",
    "niqqud": "שָׁלוֹם",
}


@pytest.mark.parametrize("text", list(AWKWARD.values()), ids=list(AWKWARD))
def test_awkward_text_gets_a_label(text: str) -> None:
    assert classify([text])[0] in LABELS


def test_batch_keeps_order_and_length() -> None:
    texts = list(AWKWARD.values()) * 3
    labels = classify(texts)
    assert len(labels) == len(texts)
    assert labels == classify(texts[:])  # deterministic
    assert [classify([t])[0] for t in texts[: len(AWKWARD)]] == labels[: len(AWKWARD)]  # batching-invariant


def test_empty_batch() -> None:
    assert classify([]) == []


def test_obvious_cases() -> None:
    assert classify(["I hate this, worst service ever, awful"]) == ["negative"]
    assert classify(["I love it, best day ever! :)"]) == ["positive"]
    assert classify(["שירות גרוע ומחפיר, בושה"]) == ["negative"]
    assert classify(["כל הכבוד, בהצלחה רבה"]) == ["positive"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=300), max_size=8))
def test_any_unicode(texts: list[str]) -> None:
    labels = classify(texts)
    assert len(labels) == len(texts) and all(label in LABELS for label in labels)


def test_crisis_terms_force_negative() -> None:
    texts = ["Loving the new phone!", "Loving the boycotting vibes", "כל הכבוד, והחרם מוצדק"]
    assert classify(texts, crisis_terms=["boycott", "חרם"])[1:] == ["negative", "negative"]
    assert classify(texts, crisis_terms=["boycott"])[0] != "negative"
