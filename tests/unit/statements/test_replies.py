"""Personal reply drafts: addressed, about what the person wrote, signed, and never identical."""

from __future__ import annotations

import pytest

from chalicelib.playbooks.loader import load_roster
from chalicelib.statements.models import Complaint
from chalicelib.statements.replies import draft_replies, find_topic
from chalicelib.statements.xtext import weighted_length

TERMS = ["recall", "food poisoning", "got sick", "salmonella", "listeria", "הרעלת מזון", "הרעלה", "סלמונלה", "ליסטריה"]
TEXTS = [
    "My kid got sick after eating your hummus",
    "Is there a recall or not?? answer me",
    "הבת שלי קיבלה הרעלת מזון מהחומוס שלכם",
    "סלמונלה?! באמת?",
    "worst company ever",
    "Salmonella in the hummus, seriously?",
]


def complaints(n: int) -> list[Complaint]:
    return [
        Complaint(platform="x", id=f"18{i:05d}", handle=f"@user_{i}", text=TEXTS[i % len(TEXTS)], engagement=1000 - i)
        for i in range(n)
    ]


@pytest.fixture
def signer():  # type: ignore[no-untyped-def]
    return load_roster().person("avi-shapira")


def test_topic_is_the_term_found_in_the_text() -> None:
    assert find_topic("My kid got sick after eating", TERMS) == "got sick"
    assert find_topic("I think this is food poisoning, not just a bad day", TERMS) == "food poisoning"
    assert find_topic("לבת שלי יש הרעלת מזון", TERMS) == "הרעלת מזון"  # the longer, more specific term wins
    assert find_topic("nothing relevant", TERMS) is None


def test_replies_are_addressed_tied_to_the_complaint_and_signed(signer) -> None:  # type: ignore[no-untyped-def]
    replies = draft_replies(complaints(6), signer=signer, terms=TERMS, limit=6)
    assert [r.reply_to for r in replies] == [f"18{i:05d}" for i in range(6)]
    for reply, complaint in zip(replies, complaints(6), strict=True):
        assert reply.text.startswith(f"@user_{complaint.id[-1]} ") and reply.handle == f"@user_{complaint.id[-1]}"
        if reply.topic:
            assert reply.topic in reply.text
        assert reply.text.endswith("— Avi Shapira") or reply.text.endswith("— אבי שפירא")
        assert complaint.text not in reply.text  # never quotes the complaint
        assert weighted_length(reply.text) <= 280
    by_id = {r.reply_to: r for r in replies}
    assert by_id["1800000"].topic == "got sick" and by_id["1800001"].topic == "recall"
    assert by_id["1800002"].lang == "he" and by_id["1800002"].topic == "הרעלת מזון"
    assert by_id["1800002"].text.endswith("— אבי שפירא")
    assert by_id["1800004"].topic is None


def test_most_engaged_first_and_limited(signer) -> None:  # type: ignore[no-untyped-def]
    items = complaints(10)[::-1]  # least engaged first in the input
    replies = draft_replies(items, signer=signer, terms=TERMS, limit=3)
    assert [r.reply_to for r in replies] == ["1800000", "1800001", "1800002"]


@pytest.mark.parametrize("count", [2, 10, 40, 120])
def test_never_two_identical_replies(signer, count: int) -> None:  # type: ignore[no-untyped-def]
    # Same handle and text for everyone: only the wording can tell the replies apart.
    same = [
        Complaint(platform="x", id=str(i), handle="@same", text="Salmonella in the hummus", engagement=5)
        for i in range(count)
    ]
    texts = [r.text for r in draft_replies(same, signer=signer, terms=TERMS, limit=count)]
    assert len(texts) == count and len(set(texts)) == count


def test_neighbouring_replies_differ_in_wording_not_just_handle(signer) -> None:  # type: ignore[no-untyped-def]
    replies = draft_replies(complaints(12), signer=signer, terms=TERMS, limit=12)
    bodies = [r.text.split(" ", 1)[1] for r in replies]
    for a, b in zip(bodies, bodies[1:], strict=False):
        assert a != b


def test_refuses_a_handle_that_is_not_one(signer) -> None:  # type: ignore[no-untyped-def]
    bad = Complaint(platform="x", id="1", handle="<script>", text="recall", engagement=1)
    with pytest.raises(ValueError):
        draft_replies([bad], signer=signer, terms=TERMS)


def test_replies_for_a_playbook_are_signed_by_each_language_signer() -> None:
    from chalicelib.playbooks.loader import default_playbooks
    from chalicelib.statements.replies import replies_for_playbook

    recall = next(p for p in default_playbooks() if p.id == "golden-product-recall")
    replies = replies_for_playbook(complaints(4), recall, load_roster(), limit=4)
    by_lang = {r.lang: r for r in replies}
    assert by_lang["he"].text.endswith("— אבי שפירא")  # he statement signer
    assert by_lang["en"].text.endswith("— Sarah Whitfield")  # en statement signer
