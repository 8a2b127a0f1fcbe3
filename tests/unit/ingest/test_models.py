"""The normalised Mention model: UTC times, storable text, ids safe to use in keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from chalicelib.ingest.models import MAX_TEXT_CHARS, Author, Mention

WHEN = datetime(2026, 11, 23, 9, 14, 7, tzinfo=UTC)


def _mention(**changes: object) -> Mention:
    fields: dict[str, object] = {
        "platform": "x",
        "platform_id": "2124793605650123776",
        "text": "@AcmeTelecom down again",
        "created_at": WHEN,
        "brands": ("acme-telecom",),
    }
    fields.update(changes)
    return Mention(**fields)  # type: ignore[arg-type]


def test_key_is_platform_and_id() -> None:
    assert _mention().key == "x#2124793605650123776"
    assert _mention(platform="instagram", platform_id="17998877665544332").key == "instagram#17998877665544332"


def test_aware_time_is_converted_to_utc() -> None:
    israel = timezone(timedelta(hours=2))
    m = _mention(created_at=datetime(2026, 11, 23, 11, 14, 7, tzinfo=israel))
    assert m.created_at == WHEN
    assert m.created_at.tzinfo is UTC


def test_iso_string_with_offset_is_converted_to_utc() -> None:
    m = _mention(created_at="2026-11-23T11:14:07+02:00")
    assert m.created_at == WHEN and m.created_at.tzinfo is UTC


@pytest.mark.parametrize("naive", [datetime(2026, 11, 23, 9, 14, 7), "2026-11-23T09:14:07"], ids=["datetime", "string"])
def test_naive_time_rejected(naive: object) -> None:
    with pytest.raises(ValidationError) as info:
        _mention(created_at=naive)
    assert info.value.errors()[0]["loc"] == ("created_at",)
    assert "created_at must carry a time zone" in info.value.errors()[0]["msg"]


@pytest.mark.parametrize(
    "platform_id",
    ["2124793605650123776#1", "a/b", "/", "#", "", "x" * 129, "id with space", "שלום", "a\nb"],
    ids=["hash", "slash", "only-slash", "only-hash", "empty", "too-long", "space", "hebrew", "newline"],
)
def test_unsafe_platform_id_rejected(platform_id: str) -> None:
    """`#` separates key parts and `/` ends up in URLs: neither may appear in an id."""
    with pytest.raises(ValidationError) as info:
        _mention(platform_id=platform_id)
    assert info.value.errors()[0]["loc"] == ("platform_id",)


@pytest.mark.parametrize(
    "platform_id",
    ["2124793605650123776", "122110573849201234_1593847261839204", "t1_m8x2kq1", "rotter-918273", "a.b:c", "x" * 128],
)
def test_platform_ids_from_real_sources_accepted(platform_id: str) -> None:
    assert _mention(platform_id=platform_id).platform_id == platform_id


@pytest.mark.parametrize("platform", ["X", "x#y", "", "-x", "a" * 33, "face book"])
def test_bad_platform_name_rejected(platform: str) -> None:
    with pytest.raises(ValidationError):
        _mention(platform=platform)


@pytest.mark.parametrize("brand", ["Acme", "acme#1", "", "-acme", "acme_telecom"])
def test_bad_brand_id_rejected(brand: str) -> None:
    with pytest.raises(ValidationError):
        _mention(brands=(brand,))


@pytest.mark.parametrize("bad", ["\ud83d", "\udc00", "\ud800\ud800"], ids=["high", "low", "two-highs"])
def test_lone_surrogate_text_is_replaced(bad: str) -> None:
    m = _mention(text=f"אקמי {bad} down")
    assert m.text.startswith("אקמי ") and m.text.endswith(" down")
    middle = m.text[len("אקמי ") : -len(" down")]
    assert len(middle) == len(bad) and set(middle) <= {"\ufffd", "?"}
    m.text.encode("utf-8")  # storable in DynamoDB
    assert Mention.model_validate_json(m.model_dump_json()) == m


def test_valid_surrogate_pair_is_kept() -> None:
    """Emoji are real text, not damage."""
    m = _mention(text="אקמי 😡 down")
    assert m.text == "אקמי 😡 down"


def test_text_length_limit() -> None:
    assert len(_mention(text="א" * MAX_TEXT_CHARS).text) == MAX_TEXT_CHARS
    with pytest.raises(ValidationError):
        _mention(text="א" * (MAX_TEXT_CHARS + 1))


def test_extra_fields_rejected_and_model_frozen() -> None:
    with pytest.raises(ValidationError):
        _mention(colour="red")
    m = _mention()
    with pytest.raises(ValidationError):
        m.text = "changed"  # type: ignore[misc]


def test_author_followers_not_negative() -> None:
    assert Author(followers=0).followers == 0
    with pytest.raises(ValidationError):
        Author(followers=-1)


def test_json_round_trip_is_exact() -> None:
    """What the webhook enqueues is what the ingest handler reads back."""
    m = _mention(
        text="@AcmeTelecom כבר שלוש שעות אין אינטרנט 😡",
        author=Author(id="982734561", handle="michal_ben", name="מיכל בן דוד", followers=312),
        url="https://x.com/michal_ben/status/2124793605650123776",
        reply_to="2124564818950045696",
    )
    assert Mention.model_validate_json(m.model_dump_json()) == m
