"""Crisis terms: case-insensitive, whole words, Hebrew prefixes and final letters, English inflections."""

from __future__ import annotations

import pytest

from chalicelib.sentiment import apply_crisis_terms, has_crisis_term

TERMS = ["boycott", "lawsuit", "חרם", "תביעה", "class action", "sue", "אין קליטה", "can't call"]


@pytest.mark.parametrize(
    "text",
    [
        "BOYCOTT them",
        "We are boycotting Acme",
        "they boycotted us",
        "boycotts everywhere",
        "#BoycottAcme",
        "#boycott",
        "the lawsuits are piling up",
        "a Class-Action is coming",
        "class   actions",
        "they sued us",
        "I'm suing",
        "חרם על אקמי",
        "החרם מתחיל",  # ה prefix
        "וכשהחרם יתחיל",  # four prefix letters ו כ ש ה
        "בחרם",  # final mem written medial after a prefix
        "חרמ",  # medial mem where a final is due
        "הגשנו תביעה",
        "בתביעה ייצוגית",
        "ולתביעה",
        "שוב אין קליטה באקמי",
        "ואין קליטה",
        "ה-boycott נגד אקמי",  # Hebrew prefix attached to a Latin word
        "@AcmeSupport I can't call anyone",
        "@AcmeSupport I can’t call anyone",  # typographic apostrophe
        "\u200fחרם\u200f",  # RTL marks
        "חֵרֶם",  # niqqud
    ],
)
def test_matches(text: str) -> None:
    assert has_crisis_term(text, TERMS)


@pytest.mark.parametrize(
    "text",
    [
        "great coverage on the beach today",
        "boy cott",
        "lawsuitx",
        "the issue is fixed",  # 'sue' inside a word
        "pursue your dreams",
        "חרמון מושלג",  # a word that starts with the term
        "תביעות",  # plural is a different form: add it to the playbook if wanted
        "מחרמשה",
        "",
        "\ud800",
    ],
)
def test_does_not_match(text: str) -> None:
    assert not has_crisis_term(text, TERMS)


def test_apply_forces_negative_only_where_matched() -> None:
    texts = ["love it", "boycott now", "אחלה", "חרם!"]
    labels = ["positive", "positive", "positive", "neutral"]
    assert apply_crisis_terms(texts, labels, TERMS) == ["positive", "negative", "positive", "negative"]
    assert labels == ["positive", "positive", "positive", "neutral"]  # input untouched


def test_no_terms_is_a_no_op() -> None:
    assert apply_crisis_terms(["boycott"], ["positive"], []) == ["positive"]
    assert apply_crisis_terms(["boycott"], ["positive"], ["", "  "]) == ["positive"]
    assert not has_crisis_term("boycott", [])


def test_terms_are_literal_not_regex() -> None:
    assert not has_crisis_term("abc", ["a.c"])
    assert has_crisis_term("a.c happened", ["a.c"])
