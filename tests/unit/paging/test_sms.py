"""Segment arithmetic and page fitting, on examples worked out by hand from the GSM 03.38 rules."""

from __future__ import annotations

import pytest

from chalicelib.paging.sms import DeliveryState, SendErrorKind, SmsSendError, fit, gsm_friendly, is_gsm, segments

HEBREW = "א"
EMOJI = "\U0001f6a8"  # 🚨, outside the BMP: a surrogate pair


@pytest.mark.parametrize(
    ("length", "expected"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (153 * 2, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm_segments(length: int, expected: int) -> None:
    info = segments("a" * length)
    assert (info.encoding, info.segments, info.units) == ("GSM-7", expected, length)


@pytest.mark.parametrize(
    ("length", "expected"),
    [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_hebrew_forces_ucs2(length: int, expected: int) -> None:
    info = segments(HEBREW * length)
    assert (info.encoding, info.segments, info.units) == ("UCS-2", expected, length)


def test_one_hebrew_letter_switches_a_latin_text_to_ucs2() -> None:
    assert segments("a" * 69 + HEBREW).segments == 1
    assert segments("a" * 70 + HEBREW) == segments(HEBREW * 71)
    assert segments("a" * 160).segments == 1 and segments("a" * 159 + HEBREW).segments == 3


def test_extension_characters_cost_two_septets() -> None:
    assert segments("€").units == 2
    for ch in "^{}\\[~]|€":
        assert segments(ch).units == 2, ch
    assert segments("€" * 80) == segments("a" * 160)
    assert segments("€" * 80 + "a").segments == 2
    assert segments("a" * 159 + "€").segments == 2  # 161 septets


def test_escape_sequence_never_straddles_two_parts() -> None:
    # 152 + escape pair would split at 153: the pair moves to part two.
    assert segments("a" * 152 + "€" + "a" * 152).segments == 3  # 306 septets, but 152 | 2+151 | 1
    assert segments("a" * 151 + "€" + "a" * 153).segments == 2  # 153 | 153


def test_emoji_count_two_utf16_units() -> None:
    assert segments(EMOJI).units == 2 and segments(EMOJI).encoding == "UCS-2"
    assert segments(EMOJI * 35).segments == 1  # 70 units
    assert segments(EMOJI * 35 + "a").segments == 2
    assert segments(HEBREW * 69 + EMOJI).segments == 2  # 71 units
    # 66 units then a pair: the pair does not fit in 67 - 66 = 1, so it opens part two.
    assert segments(HEBREW * 66 + EMOJI + HEBREW * 66).segments == 3
    assert segments(HEBREW * 65 + EMOJI + HEBREW * 67).segments == 2


def test_accented_latin_stays_gsm_but_others_do_not() -> None:
    assert is_gsm("Café Müller à Zürich: Ñ, ß, Ø, Å, Δ")
    assert is_gsm("Ç") and not is_gsm("ç")  # only the capital is in the GSM basic set
    assert not is_gsm("It’s")  # curly apostrophe


def test_empty_text_needs_no_sms() -> None:
    assert segments("").segments == 0


def test_gsm_friendly_replaces_typography_only_when_that_makes_the_text_gsm() -> None:
    assert gsm_friendly("It’s down — “badly”…") == "It's down - \"badly\"..."
    hebrew = "תקלה — “חמורה”"
    assert gsm_friendly(hebrew) == hebrew


PAGE_TAIL = "Reply ACK 1234"


def page(summary: str, tail: str = PAGE_TAIL) -> str:
    return f"SEV1 acme-telecom: {summary}\nk.example/i/7f3a {tail}"


def test_fit_returns_a_short_page_unchanged() -> None:
    text = page("neg 212/5min, 9x usual")
    assert fit(text) == text


def test_fit_trims_the_summary_and_keeps_the_reply_tail() -> None:
    text = page("negative mentions about the outage in the north, " * 10)
    fitted = fit(text)
    assert segments(text).segments > 2
    assert segments(fitted).segments <= 2
    assert fitted.endswith("\nk.example/i/7f3a " + PAGE_TAIL)
    assert fitted.startswith("SEV1 acme-telecom: negative mentions")
    assert "..." in fitted and "…" not in fitted  # the GSM ellipsis: "…" would force UCS-2
    assert segments(fitted).units > 280  # uses the room it has, not a crude cut


def test_fit_to_one_segment() -> None:
    fitted = fit(page("x" * 400), max_segments=1)
    assert segments(fitted).segments == 1 and fitted.endswith(PAGE_TAIL)


def test_fit_hebrew_page_counts_ucs2_and_keeps_tail() -> None:
    summary = "עלייה חדה בתגובות שליליות על תקלה באזור הצפון, " * 6
    fitted = fit(page(summary))
    info = segments(fitted)
    assert info.encoding == "UCS-2" and info.segments <= 2 and info.units > 120
    assert fitted.endswith(PAGE_TAIL)
    assert "…" in fitted  # UCS-2 anyway: the one-character ellipsis is cheaper


def test_fit_cuts_at_a_word_boundary() -> None:
    fitted = fit(page("spike " * 60))
    summary = fitted.split("\n")[0]
    assert summary.endswith("spike...")


def test_fit_with_a_designated_part_on_one_line() -> None:
    summary = "complaints about billing errors and the outage " * 8
    text = f"SEV2 golden-foods {summary}| {PAGE_TAIL}"
    fitted = fit(text, trim=summary)
    assert segments(fitted).segments <= 2
    assert fitted.startswith("SEV2 golden-foods complaints") and fitted.endswith("| " + PAGE_TAIL)


def test_fit_drops_the_part_entirely_when_needed() -> None:
    head = "H" * 290  # 290 + newline + 14 = 305 septets: no room even for " s..."
    fitted = fit(head + " summary summary\n" + PAGE_TAIL, trim=" summary summary")
    assert fitted == head + "\n" + PAGE_TAIL


def test_fit_refuses_to_cut_the_protected_text() -> None:
    with pytest.raises(ValueError, match="protected"):
        fit("short\n" + "x" * 400)
    with pytest.raises(ValueError, match="trim"):
        fit("one line without a designated part")
    with pytest.raises(ValueError, match="does not occur"):
        fit("abc", trim="zzz")


def test_fit_smart_punctuation_keeps_an_english_page_gsm() -> None:
    text = page("It’s the app — again: “can’t log in” " * 3)
    fitted = fit(text)
    assert segments(fitted).encoding == "GSM-7" and fitted.endswith(PAGE_TAIL)
    assert fit(text, smart=False) != fitted


def test_delivery_state_finality_and_error_retryable() -> None:
    assert DeliveryState.DELIVERED.final and DeliveryState.FAILED.final and not DeliveryState.SENT.final
    error = SmsSendError(SendErrorKind.RETRYABLE, "busy", http_status=429, retry_after=2.0)
    assert error.retryable and "retryable" in str(error)
    assert not SmsSendError(SendErrorKind.RECIPIENT, "landline", code=21614).retryable
