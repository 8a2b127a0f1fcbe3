"""X's weighted length (twitter-text v3) and fitting statements into posts."""

from __future__ import annotations

import re

import pytest

from chalicelib.statements import xtext
from chalicelib.statements.xtext import meta_parts, weighted_length, x_short, x_thread


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("hello", 5),
        ("שלום עולם", 9),  # Hebrew letters count 1
        ("مرحبا", 5),  # Arabic too (below U+10FF)
        ("Привет", 6),  # Cyrillic
        ("日本語", 6),  # CJK counts 2
        ("한국어", 6),  # Hangul syllables count 2
        ("“quoted” — dash…", 17),  # U+2010-U+201F count 1 (quotes, em dash); the ellipsis U+2026 counts 2
        ("′″", 2),  # U+2032-U+2037 count 1
        ("😀", 2),
        ("👍🏽", 2),  # emoji + skin tone: one emoji
        ("👨\u200d👩\u200d👧\u200d👦", 2),  # ZWJ family: one emoji
        ("🇮🇱", 2),  # flag: two regional indicators, one emoji
        ("1️⃣", 2),  # keycap
        ("❤️", 2),  # heart + VS16
        ("🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f", 2),  # England flag (tag sequence)
        ("a😀b", 4),
        ("https://example.com/a/very/long/path?with=query&and=more", 23),
        ("see https://example.com/x.", 28),  # trailing full stop is not part of the URL
        ("acme.co.il/status", 23),  # bare domain
        ("two http://a.com http://b.com", 4 + 23 + 1 + 23),
        ("e\u0301", 1),  # NFC: e + combining acute is one character
    ],
)
def test_weighted_length(text: str, expected: int) -> None:
    assert weighted_length(text) == expected


def test_limit_boundary() -> None:
    assert xtext.fits_x("a" * 280) and not xtext.fits_x("a" * 281)
    assert xtext.fits_x("א" * 280) and not xtext.fits_x("א" * 281)
    assert xtext.fits_x("日" * 140) and not xtext.fits_x("日" * 141)


def _words(text: str) -> list[str]:
    return re.sub(r"\n\d+/\d+$", "", text).split()


@pytest.mark.parametrize(
    "text",
    [
        "We are sorry. " * 60,
        "אנחנו מצטערים מאוד על התקלה. " * 40,
        "日本語のテキストです。" * 40,
        "para one is short.\n\n" + "word " * 300 + "\n\nlast paragraph.",
        "x" * 700,  # one unbreakable word
    ],
)
def test_thread_parts_fit_and_keep_every_word_in_order(text: str) -> None:
    parts = x_thread(text)
    assert len(parts) > 1
    assert all(weighted_length(p) <= 280 for p in parts)
    assert [p.rsplit("\n", 1)[1] for p in parts] == [f"{i}/{len(parts)}" for i in range(1, len(parts) + 1)]
    rebuilt = "".join("".join(_words(p)) for p in parts)
    assert rebuilt == "".join(text.split())


def test_short_text_is_one_post_unchanged() -> None:
    text = "Our network is down in the north. Next update by 18:00.\n\nNoa Ben-David"
    assert x_thread(text) == [text]
    assert x_short(text, "Noa Ben-David") == text


def test_short_variant_keeps_opening_sentences_and_signs() -> None:
    text = "First sentence here. Second sentence here. " * 20 + "\n\nMore.\n\nNoa Ben-David"
    short = x_short(text, "Noa Ben-David")
    assert weighted_length(short) <= 280
    assert short.startswith("First sentence here.") and short.endswith("…\n— Noa Ben-David")


def test_short_variant_of_one_huge_sentence_cuts_at_a_word() -> None:
    short = x_short("word " * 200, "נועה")
    assert weighted_length(short) <= 280 and short.endswith("…\n— נועה") and "wor…" not in short


def test_meta_parts_respect_8000() -> None:
    assert meta_parts("short") == ["short"]
    long = "Sentence number one is here. " * 400  # ~11,600 characters
    parts = meta_parts(long)
    assert len(parts) == 2 and all(len(p) <= 8000 for p in parts)
