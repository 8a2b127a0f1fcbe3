"""Triage rules: pure functions, Hebrew and English."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.ingest.models import Author, Mention
from chalicelib.triage import rules
from chalicelib.triage.models import BrandSettings, ResponseTargets, Topic, TriageFile, effective
from chalicelib.triage.queue import fingerprint, order_key

TOPICS = (
    Topic(id="safety", weight=25, keywords=["danger", "הרעלה", "סכנה"]),
    Topic(id="outage", weight=15, keywords=["outage", "not working", "תקלה", "לא עובד"], patterns=[r"אין (?:קו|רשת)"]),
    Topic(id="billing", weight=5, keywords=["charge", "refund", "חיוב", "החזר"]),
    Topic(id="staff", weight=5, keywords=["rude", "נציג", "גס רוח"]),
)
SETTINGS = BrandSettings("acme", "he", "Asia/Jerusalem", ResponseTargets(), TOPICS, 7)
RULES = rules.build_rules(
    "acme", SETTINGS, [("outage-playbook", ("no signal", "אין קליטה", "חרם")), ("recall", ("recall",))]
)


def m(text: str, sentiment: str = "neutral", *, followers: int | None = None, reply_to: str | None = None,
      language: str = "en") -> Mention:
    return Mention(
        platform="x", platform_id="1", text=text, created_at=datetime(2026, 3, 1, tzinfo=UTC),
        author=Author(handle="u", followers=followers), reply_to=reply_to, brands=("acme",),
        language=language, sentiment=sentiment,
    )


@pytest.mark.parametrize(
    ("text", "topics"),
    [
        ("the app is not working again", ("outage",)),
        ("they charged me twice and no refund", ("billing",)),  # inflection: charged
        ("ממש תקלות כל יום", ()),  # a plural suffix is not the word (documented: list it)
        ("ובתקלה הזאת אף אחד לא עונה", ("outage",)),  # attached prefixes ו+ב
        ("החיוב הכפול עדיין לא בוטל", ("billing",)),  # ה prefix
        ("הנציג היה גס רוח אליי", ("staff",)),
        ("אין רשת בכל הצפון", ("outage",)),  # a pattern
        ("יש סכנה של הרעלה, והחיוב לא בוטל", ("safety", "billing")),  # in configured order
        ("Outage. Also a RUDE agent", ("outage", "staff")),
        ("great day", ()),
    ],
)
def test_topics_hebrew_and_english(text: str, topics: tuple[str, ...]) -> None:
    assert rules.triage(m(text), RULES).topics == topics


def test_crisis_term_matches_the_most_severe_playbook_and_forces_negative() -> None:
    result = rules.triage(m("וכשאין קליטה מה עושים", "positive", language="he"), RULES)
    assert result.crisis and result.playbook == "outage-playbook" and result.sentiment == "negative"
    assert result.needs_reply
    assert rules.triage(m("product recall announced"), RULES).playbook == "recall"
    assert rules.triage(m("all fine here"), RULES).playbook is None


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("When will it be fixed?", True),
        ("why no signal", True),
        ("מתי זה יחזור לעבוד", True),
        ("ומה עם ההחזר", True),
        ("האם יש תקלה באזור", True),
        ("היכן אפשר לקבל החזר", True),
        ("Anyone else without internet", True),
        ("Thanks for the quick fix", False),
        ("מעולה, תודה רבה", False),
        ("I know how it works", False),  # a question word not at the start
    ],
)
def test_questions(text: str, question: bool) -> None:
    assert rules.is_question(text) is question


def test_strength_grows_with_intensity_markers() -> None:
    assert rules.strength("fine", "neutral") == 0
    plain = rules.strength("the service is bad", "negative")
    assert plain == 0.5
    assert rules.strength("the service is bad!!", "negative") == 0.625
    assert rules.strength("השירות גרוע", "negative") == 0.625  # an intensifier word
    assert rules.strength("WORST SERVICE EVER!!! sooooo bad", "negative") == 1.0


def test_reach_and_thread_are_bounded_and_monotone() -> None:
    assert rules.reach(None) == 0 and rules.reach(0) == 0
    assert rules.reach(100) < rules.reach(10_000) < rules.reach(1_000_000) == 1.0 == rules.reach(50_000_000)
    assert rules.thread_growth(False, 50) == 0
    assert rules.thread_growth(True, 0) == 0 < rules.thread_growth(True, 1) < rules.thread_growth(True, 15) == 1.0


def test_urgency_formula() -> None:
    # crisis 30 + strength 0.75*25 + reach 0.9*15 + question 10 + outage 15 = 87.25 -> 87
    assert rules.urgency(crisis=True, strength=0.75, reach=0.9, thread=0, question=True, topic_weight=15) == 87
    assert rules.urgency(crisis=True, strength=1, reach=1, thread=1, question=True, topic_weight=30) == 100
    assert rules.urgency(crisis=False, strength=0, reach=0, thread=0, question=False, topic_weight=0) == 0
    assert rules.group_urgency(40, 1) == 40 and rules.group_urgency(40, 2) == 44 and rules.group_urgency(40, 64) == 50
    assert rules.group_urgency(98, 8) == 100


def test_triage_of_a_hebrew_crisis_post_from_a_large_account() -> None:
    text = "@Acme אין קליטה בכל חיפה כבר שעתיים!!! בושה"
    result = rules.triage(m(text, "negative", followers=250_000, language="he"), RULES)
    assert result.topics == () and result.crisis and not result.question
    assert result.strength == 0.75 and result.reach == pytest.approx(0.8997, abs=1e-3)
    assert result.urgency == round(30 + 25 * 0.75 + 15 * result.reach)


def test_reply_rule() -> None:
    assert not rules.triage(m("love it", "positive"), RULES).needs_reply
    assert not rules.triage(m("new plan launched today"), RULES).needs_reply
    assert rules.triage(m("bad experience", "negative"), RULES).needs_reply
    assert rules.triage(m("does the plan include roaming?", "positive"), RULES).needs_reply


def test_queue_order_is_urgency_then_age() -> None:
    class E:
        def __init__(self, eid: str, urgency: int, first_at: float) -> None:
            self.entry_id, self.urgency, self.first_at = eid, urgency, first_at

    items = [E("a", 40, 100), E("b", 70, 300), E("c", 40, 50), E("d", 70, 200)]
    assert [e.entry_id for e in sorted(items, key=order_key)] == ["d", "b", "c", "a"]


def test_fingerprint_ignores_urls_handles_digits_and_case_but_not_short_texts() -> None:
    a = fingerprint("@Acme No service in Haifa since the morning! https://t.co/x")
    assert a == fingerprint("@other no SERVICE in haifa since the morning")
    assert a != fingerprint("@Acme No service in Akko since the morning!")
    assert fingerprint("why??") is None


def test_brand_settings_merge_own_topics_before_defaults() -> None:
    file = TriageFile.model_validate({
        "defaults": {"topics": [{"id": "billing", "keywords": ["bill"]}, {"id": "staff", "keywords": ["rude"]}]},
        "brands": {"acme": {"locale": "he", "response_minutes": {"default": 45, "platforms": {"x": 20}},
                            "topics": [{"id": "billing", "keywords": ["חשבון"]}]}},
    })
    own = effective(file, "acme")
    assert [t.id for t in own.topics] == ["billing", "staff"] and own.topics[0].keywords == ["חשבון"]
    assert own.targets.minutes_for("x") == 20 and own.targets.minutes_for("facebook") == 45
    other = effective(file, "zeta")
    assert other.locale == "en" and other.targets.minutes_for("x") == 60 and other.timezone == "UTC"


def _corpus() -> list[str]:
    import json

    from chalicelib.config import PROJECT_ROOT

    texts = [
        "ובתקלה הזאת", "וכשהחרם התחיל", "ה-boycott", "הboycott", "can't call anyone", "cant call", "no_signal here",
        "#NoSignal again", "they BOYCOTTED us", "boycott's effect", "sued!", "banned", "אין קליטה!!", "ואין קליטה",
        "שיחות חירום בלבד", "network down", "networks down", "charged", "refunds", "rudeness",
    ]
    demo = json.loads((PROJECT_ROOT / "klaxon" / "demo_data" / "texts.json").read_text(encoding="utf-8"))
    for lang, groups in demo.items():
        if not lang.startswith("_"):
            for group in groups.values():
                texts += [t.replace("{brand}", "@Acme") for t in group]
    shared = PROJECT_ROOT.parent / "shared" / "data" / "sentiment"
    for name in ("en_dev.jsonl", "he_dev.jsonl"):
        if (shared / name).exists():
            texts += [json.loads(x)["text"] for x in (shared / name).read_text(encoding="utf-8").splitlines() if x]
    return texts


def test_word_key_prefilter_never_hides_a_match_of_the_crisis_matcher() -> None:
    from chalicelib.playbooks.loader import default_playbooks
    from chalicelib.sentiment.text import fold
    from chalicelib.triage.config import load_triage
    from chalicelib.triage.models import effective

    file = load_triage()
    term_lists = [tuple(t.keywords) for b in ("acme-telecom", "golden-foods") for t in effective(file, b).topics]
    term_lists += [tuple(p.triggers.all_terms()) for p in default_playbooks()]
    term_lists += [("boycott", "sue", "ban", "can't call", "no signal", "חרם", "אין קליטה")]
    compiled = [rules.Terms.of(terms) for terms in term_lists]
    hits = 0
    for text in _corpus():
        folded = fold(text)
        keys = rules.text_keys(folded)
        for terms in compiled:
            expected = terms.matcher is not None and terms.matcher.search(folded) is not None
            assert terms.search(folded, keys) == expected, (text, terms.keys)
            hits += expected
    assert hits > 50  # the corpus does exercise matches
