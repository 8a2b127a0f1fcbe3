"""The page text: recipient's language, two SMS segments at most, the reply instruction never cut."""

from __future__ import annotations

import re

import pytest

from chalicelib.paging.messages import (
    Page,
    language_for,
    page_text,
    render_page,
    reply_text,
    short_link,
    summary_in,
)
from chalicelib.paging.service import parse_command
from chalicelib.paging.sms import segments

LINK = "https://klaxon.example.com/i/4821"
DETECTOR = "neg 212/5min, 9.2x usual (expected 23)"
LONG = (
    "Thousands of customers report no mobile data across the centre since 07:40; a viral video of the "
    "CEO's remarks is being shared with the outage complaints, and journalists are asking for comment"
)
HEBREW_LONG = (
    "אלפי לקוחות מדווחים על נפילת הגלישה הסלולרית במרכז מאז 07:40, סרטון של דברי המנכ״ל מופץ יחד "
    "עם התלונות ועיתונאים כבר פונים לתגובה"
)


def page(summary: str = DETECTOR, link: str | None = LINK, brand: str = "Acme Telecom") -> Page:
    return Page(severity="sev1", brand=brand, summary=summary, code="4821", link=link)


@pytest.mark.parametrize(
    ("languages", "expected"),
    [(["he", "en"], "he"), (["en", "he"], "en"), (["ru", "he"], "he"), (["fr", "ar"], "en"), (["en"], "en")],
)
def test_language_is_the_first_supported_one_the_person_reads(languages: list[str], expected: str) -> None:
    assert language_for(languages) == expected


def test_english_page_layout_and_gsm7() -> None:
    text = render_page(page(), "en")
    assert text == f"KLAXON SEV1 Acme Telecom\n{DETECTOR}\nIncident 4821: {LINK}\nReply ACK 4821"
    info = segments(text)
    assert (info.encoding, info.segments) == ("GSM-7", 1)


def test_english_stays_gsm7_despite_typographic_punctuation() -> None:
    text = render_page(page("CEO’s “apology” video – trending…"), "en")
    assert segments(text).encoding == "GSM-7"
    assert "CEO's \"apology\" video - trending..." in text


def test_long_english_summary_is_trimmed_to_two_segments_keeping_the_ack_line() -> None:
    text = render_page(page(f"{LONG} {LONG}"), "en")
    info = segments(text)
    assert (info.encoding, info.segments) == ("GSM-7", 2)
    assert text.endswith(f"\nIncident 4821: {LINK}\nReply ACK 4821")
    summary_line = text.split("\n")[1]
    assert summary_line.endswith("...") and f"{LONG} {LONG}".startswith(summary_line[:-3])


def test_hebrew_page_translates_the_detector_summary() -> None:
    text = render_page(page(), "he")
    assert text == (
        "קלקסון SEV1: Acme Telecom\n"
        "212 תגובות שליליות ב-5 דק׳, פי 9.2 מהרגיל\n"
        f"{LINK}\n"
        "לאישור השיבו ACK 4821"
    )
    info = segments(text)
    assert (info.encoding, info.segments) == ("UCS-2", 2)


@pytest.mark.parametrize("summary", [HEBREW_LONG, LONG, HEBREW_LONG * 3, "🚨" * 200, DETECTOR])
def test_hebrew_stays_within_two_ucs2_segments(summary: str) -> None:
    text = render_page(page(summary), "he")
    info = segments(text)
    assert info.encoding == "UCS-2" and info.segments <= 2
    assert text.endswith("\nלאישור השיבו ACK 4821")
    assert LINK in text


def test_hebrew_lines_start_with_a_hebrew_word_so_they_read_right_to_left() -> None:
    text = render_page(page(HEBREW_LONG), "he")
    for line in text.split("\n"):
        if line != LINK:
            assert re.match(r"^[\u0590-\u05ff0-9]", line), line


def test_the_expected_figure_goes_whole_before_words_are_cut() -> None:
    he = summary_in(DETECTOR, "he")
    assert he == "212 תגובות שליליות ב-5 דק׳, פי 9.2 מהרגיל (בדרך כלל 23)"
    text = render_page(page(), "he")
    assert "(" not in text and "…" not in text


@pytest.mark.parametrize(
    ("summary", "hebrew"),
    [
        ("neg 1/1min, 3.0x usual", "תגובה שלילית אחת בדקה האחרונה, פי 3 מהרגיל"),
        ("neg 12k/1h, 14x usual (expected 800)", "12k תגובות שליליות בשעה האחרונה, פי 14 מהרגיל (בדרך כלל 800)"),
        (
            "neg share 40%/15min, 3.5x usual (expected 11%)",
            "40% מהתגובות שליליות ב-15 דק׳, פי 3.5 מהרגיל (בדרך כלל 11%)",
        ),
        ("Opened by hand: CEO interview", "Opened by hand: CEO interview"),
    ],
)
def test_summary_in_hebrew(summary: str, hebrew: str) -> None:
    assert summary_in(summary, "he") == hebrew
    assert summary_in(summary, "en") == summary


def test_a_long_public_url_loses_the_link_never_the_ack() -> None:
    long_link = "https://klaxon.example.com/" + "x" * 300 + "/i/4821"
    for lang, ack in (("he", "לאישור השיבו ACK 4821"), ("en", "Reply ACK 4821")):
        text = render_page(page(link=long_link), lang)
        assert segments(text).segments <= 2
        assert text.endswith(ack) and long_link not in text
        assert "4821" in text.split("\n")[-2]


def test_page_text_picks_the_language_and_builds_the_link() -> None:
    assert short_link("https://klaxon.example.com/", "4821") == LINK
    assert short_link(None, "4821") is None
    he = page_text(severity="sev2", brand="Golden Foods", summary=DETECTOR, code="4821", languages=["he", "en"],
                   public_url="https://klaxon.example.com")
    assert he.startswith("קלקסון SEV2: Golden Foods") and LINK in he
    en = page_text(severity="sev2", brand="Golden Foods", summary=DETECTOR, code="4821", languages=["en"],
                   public_url=None)
    assert en == f"KLAXON SEV2 Golden Foods\n{DETECTOR}\nIncident 4821\nReply ACK 4821"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("ACK 4821", ("ack", "4821")),
        ("ack4821", ("ack", "4821")),
        ("  Ack   4821  ", ("ack", "4821")),
        ("ACK #4821", ("ack", "4821")),
        ("אישור 4821", ("ack", "4821")),
        ("אישור4821", ("ack", "4821")),
        ("RESOLVE 4821", ("resolve", "4821")),
        ("resolve 4821.", ("resolve", "4821")),
        ("ACK 482", None),
        ("ACK 48211", None),
        ("ACK", None),
        ("please ACK 4821", None),
        ("", None),
    ],
)
def test_parse_command(body: str, expected: tuple[str, str] | None) -> None:
    assert parse_command(body) == expected


def test_replies_in_both_languages_fit_one_sms() -> None:
    for kind, values in (
        ("acknowledged", {"code": "4821", "name": "מאיה כץ"}),
        ("already_acknowledged", {"code": "4821", "by": "Sarah Whitfield"}),
        ("unknown_code", {"code": "4821"}),
        ("not_allowed", {"code": "4821", "status": "triggered"}),
        ("help", {}),
    ):
        for lang in ("he", "en"):
            assert segments(reply_text(kind, lang, **values)).segments <= 2
    assert reply_text("help", "ru") == reply_text("help", "en")
    assert reply_text("not_allowed", "en", code="4821", status="triggered").endswith("(triggered).")
    assert reply_text("not_allowed", "he", code="4821", status="resolved").endswith("(נסגר).")
